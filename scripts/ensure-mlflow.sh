#!/usr/bin/env bash
# Installs a pinned MLflow (plus scikit-learn, for the logged-model tests) into a
# project-local virtualenv, once, and optionally pinned sets of extras into the
# same virtualenv (each set once). Prints the venv's bin directory on stdout.
# Usage: scripts/ensure-mlflow.sh [VERSION [SET...]]   (default 3.17.2)
# Sets:
#   servers  what the server-setup tests need: mlflow[auth] (basic-auth app),
#            psycopg (PostgreSQL backend store), moto[server] + boto3 (S3 on
#            loopback, and MLflow's S3 artifact client)
#   auth     only mlflow[auth] (the basic-auth app), for a release the suite
#            runs with permissions but no other server set-up (3.12.0)
set -euo pipefail
version="${1:-3.17.2}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MODELSYNC_VENV_DIR:-$root/.tools}/mlflow-$version"
stamp="$venv/.installed"
pip_install() {
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
}
# Pins installed with MLflow; the stamp below names them, so changing a pin
# re-runs pip (in place) on machines that already have the venv.
base=(scikit-learn)
case "$version" in
  # MLflow 2.22 imports FallbackAsyncAdaptedQueuePool, gone in SQLAlchemy 2.1.
  2.*) base+=("numpy<2" "sqlalchemy<2.1") ;;
  # So does MLflow 3.4 (the version matrix's early 3.x).
  3.[0-9].*) base+=("sqlalchemy<2.1") ;;
esac
if [ ! -f "$stamp" ]; then
  python="$(command -v python3 || true)"
  [ -n "$python" ] || { echo "ensure-mlflow: python3 is required" >&2; exit 1; }
  echo "ensure-mlflow: installing mlflow==$version into $venv (first run only, ~1 min)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  pip_install "mlflow==$version" "${base[@]}"
  touch "$stamp"
fi
base_stamp="$venv/.installed-base-$(printf '%s\n' "${base[@]}" | sha256sum | cut -c1-12)"
if [ ! -f "$base_stamp" ]; then
  pip_install "mlflow==$version" "${base[@]}"
  touch "$base_stamp"
fi
for set in "$@"; do
  case "$set" in
    servers)
      pkgs=("mlflow[auth]==$version" "psycopg[binary]==3.3.9" "moto[server]==5.2.5" "boto3==1.44.8")
      ;;
    auth)
      pkgs=("mlflow[auth]==$version")
      ;;
    *) echo "ensure-mlflow: unknown set of extras: $set" >&2; exit 1 ;;
  esac
  # The stamp names the pins, so changing a pin reinstalls.
  set_stamp="$venv/.installed-$set-$(printf '%s\n' "${pkgs[@]}" | sha256sum | cut -c1-12)"
  if [ ! -f "$set_stamp" ]; then
    echo "ensure-mlflow: installing $set extras into $venv (first run only): ${pkgs[*]}" >&2
    pip_install "${pkgs[@]}"
    touch "$set_stamp"
  fi
done
echo "$venv/bin"
