#!/usr/bin/env bash
# Installs the Debian packages building modelsync needs, only when missing:
# protoc with its well-known types (etcd-client generates its gRPC code at
# build time), and perl and make (git2's vendored OpenSSL and libgit2 are
# compiled from source and linked statically, so the binary needs no libssl
# where it runs). Called by examples/quickstart/run.sh,
# scripts/build-wheel.sh and scripts/ensure-system-deps.sh. Needs root (or
# sudo) when it installs.
set -euo pipefail
missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
# OpenSSL's Configure needs the full perl (IPC::Cmd), not only perl-base.
perl -MIPC::Cmd -e 1 >/dev/null 2>&1 || missing+=(perl)
command -v make >/dev/null 2>&1 || missing+=(make)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-build-deps: installing ${missing[*]} with apt-get" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
