#!/usr/bin/env bash
# The whole test suite, MLflow integration tests included, and the habits
# checks. Installs what the tests need first, so it works on a fresh
# machine; nothing is skipped:
# - PostgreSQL and openssl from Debian's packages, when missing;
# - MLflow 3.17.2 in a project-local virtualenv, with the extras the server
#   setups need (basic-auth, psycopg, moto, boto3);
# - MLflow 2.22.5 in its own virtualenv (the MLflow 2.x configuration);
# - MLflow 3.12.0 and 3.4.0, each in its own virtualenv (the version matrix;
#   3.12.0 with the basic-auth app, for the permission tests);
# - actionlint and ShellCheck in a virtualenv (the CI example's lint test);
# - maturin, pre-commit and hadolint, each in its own virtualenv (the
#   install tests: the wheel, the pre-commit hook, the Dockerfile).
# - KServe's storage downloader (kserve-storage) in a virtualenv (the
#   serving tests download what `modelsync resolve` emits with it).
# Then: cargo fmt --check, clippy with warnings denied, cargo doc with
# warnings denied, the wheel (the release binary, built once per run and
# named in MODELSYNC_WHEEL for tests/integration/install.rs), and cargo
# test. Any failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cargo fmt --check
scripts/ensure-system-deps.sh
scripts/ensure-mlflow.sh 3.17.2 servers >/dev/null
scripts/ensure-mlflow.sh 2.22.5 >/dev/null
# The rest of the version matrix (tests/integration/support/servers.rs MATRIX).
for version in 3.12.0 3.4.0; do scripts/ensure-mlflow.sh "$version" >/dev/null; done
scripts/ensure-mlflow.sh 3.12.0 auth >/dev/null
scripts/ensure-actionlint.sh >/dev/null
for tool in maturin pre-commit hadolint; do scripts/ensure-pytool.sh "$tool" >/dev/null; done
scripts/ensure-kserve-storage.sh >/dev/null
echo "test.sh: tools ready after $(( $(date +%s) - start )) s" >&2
# The builds (debug, release, the pre-commit hook's own) and the servers'
# data take about 25 GB: say up front how much room there is, so that a
# "No space left on device" later reads as what it is.
echo "test.sh: free disk space: $(df -Ph . | awk 'NR==2 {print $4}') here, $(df -Ph "${TMPDIR:-/tmp}" | awk 'NR==2 {print $4}') in ${TMPDIR:-/tmp}" >&2
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked
wheel_start=$(date +%s)
MODELSYNC_WHEEL="$(scripts/build-wheel.sh)"
export MODELSYNC_WHEEL
echo "test.sh: the wheel built in $(( $(date +%s) - wheel_start )) s" >&2
cargo test --locked "$@"
echo "test.sh: done in $(( $(date +%s) - start )) s" >&2
