#!/usr/bin/env bash
# Installs the Debian packages building modelsync needs, only when missing:
# pkg-config and libssl-dev (git2 builds against the system OpenSSL), and
# protoc with its well-known types (etcd-client generates its gRPC code at
# build time). Called by examples/quickstart/run.sh and
# scripts/ensure-system-deps.sh. Needs root (or sudo) when it installs.
set -euo pipefail
missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-build-deps: installing ${missing[*]} with apt-get" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
