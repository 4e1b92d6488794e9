#!/usr/bin/env bash
# Installs the Debian packages the server-setup tests need, only when missing:
# PostgreSQL (initdb/postgres, for MLflow's PostgreSQL backend store) and the
# openssl CLI (the tests' private CA), Chromium (the status page's headless
# browser test) and ssh-keygen (signed-commit tests). Needs root (or sudo) when it installs.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# git2 builds against the system OpenSSL.
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-system-deps: installing ${missing[*]} with apt-get" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
