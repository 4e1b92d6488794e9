#!/usr/bin/env bash
# The whole test suite, MLflow integration tests included. Installs what the
# tests need first, so it works on a fresh machine; nothing is skipped:
# - PostgreSQL and openssl from Debian's packages, when missing;
# - MLflow 3.17.2 in a project-local virtualenv, with the extras the server
#   setups need (basic-auth, psycopg, moto, boto3);
# - MLflow 2.22.5 in its own virtualenv (the MLflow 2.x configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/ensure-system-deps.sh
scripts/ensure-mlflow.sh 3.17.2 servers >/dev/null
scripts/ensure-mlflow.sh 2.22.5 >/dev/null
echo "test.sh: MLflow ready after $(( $(date +%s) - start )) s" >&2
cargo test --locked "$@"
echo "test.sh: done in $(( $(date +%s) - start )) s" >&2
