#!/usr/bin/env bash
# The quickstart: builds modelsync, applies this folder's manifests to a fresh
# embedded registry (a JSON file, no server needed), shows the result, then
# shows that a second plan has nothing left to do.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
# Building needs protoc (etcd-client) and libssl-dev: installed when missing.
scripts/ensure-build-deps.sh
cargo build --quiet --bin modelsync
bin="$root/target/debug/modelsync"
registry="$root/target/quickstart/registry.json"
rm -f "$registry" "$registry.lock"
export MODELSYNC_REGISTRY="file:$registry"

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }
else
  step() { printf '\n$ %s\n' "$*" >&2; }
fi

step modelsync validate examples/quickstart/manifests
"$bin" validate examples/quickstart/manifests
step modelsync plan examples/quickstart/manifests
"$bin" plan examples/quickstart/manifests
step modelsync apply examples/quickstart/manifests
"$bin" apply examples/quickstart/manifests
step modelsync get fraud-detector --alias champion
"$bin" get fraud-detector --alias champion
step modelsync plan examples/quickstart/manifests --detailed-exitcode
"$bin" plan examples/quickstart/manifests --detailed-exitcode
echo >&2
echo "Converged: the second plan is empty (exit 0). Registry file: $registry" >&2
