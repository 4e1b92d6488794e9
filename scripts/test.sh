#!/usr/bin/env bash
# The whole test suite, MLflow integration tests included. Installs what the
# tests need (a pinned MLflow in a project-local virtualenv) first, so it
# works on a fresh machine; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/ensure-mlflow.sh 3.17.2 >/dev/null
echo "test.sh: MLflow ready after $(( $(date +%s) - start )) s" >&2
cargo test --locked "$@"
echo "test.sh: done in $(( $(date +%s) - start )) s" >&2
