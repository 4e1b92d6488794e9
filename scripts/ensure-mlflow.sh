#!/usr/bin/env bash
# Installs a pinned MLflow (plus scikit-learn, for the logged-model tests) into a
# project-local virtualenv, once. Prints the venv's bin directory on stdout.
# Usage: scripts/ensure-mlflow.sh [VERSION]   (default 3.17.2)
set -euo pipefail
version="${1:-3.17.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MODELSYNC_VENV_DIR:-$root/.tools}/mlflow-$version"
stamp="$venv/.installed"
if [ ! -f "$stamp" ]; then
  python="$(command -v python3 || true)"
  [ -n "$python" ] || { echo "ensure-mlflow: python3 is required" >&2; exit 1; }
  echo "ensure-mlflow: installing mlflow==$version into $venv (first run only, ~1 min)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  extra=(scikit-learn)
  case "$version" in
    2.*) extra+=("numpy<2") ;;
  esac
  "$venv/bin/pip" install --quiet --disable-pip-version-check "mlflow==$version" "${extra[@]}" >&2
  touch "$stamp"
fi
echo "$venv/bin"
