#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only when
# missing: what building needs (scripts/ensure-build-deps.sh: protoc, perl,
# make), PostgreSQL (initdb/postgres, for MLflow's PostgreSQL
# backend store and the leader-election tests), etcd (etcd-server 3.4, the
# leader-election tests' 3-member cluster), the openssl CLI (the tests'
# private CA), Chromium (the status page's headless browser test) and
# ssh-keygen (the signed-commit tests). Needs root (or sudo) when it installs.
set -euo pipefail
"$(dirname "$0")/ensure-build-deps.sh"
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-system-deps: installing ${missing[*]} with apt-get" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
