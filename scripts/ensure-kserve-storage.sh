#!/usr/bin/env bash
# Installs KServe's own storage downloader (`kserve-storage`, the library
# KServe's storage initializer runs to fetch a model's `storageUri`) into a
# project-local virtualenv, once. The serving tests download the URI
# `modelsync resolve` emits with it and recompute the digest over what it
# wrote. From PyPI only (wheels and sdists of its dependencies; nothing is
# fetched from elsewhere); it needs Python 3.10 to 3.13.
# Prints the venv's bin directory (its `python` imports `kserve_storage`).
# Usage: scripts/ensure-kserve-storage.sh
set -euo pipefail
pins=("kserve-storage==0.21.0")
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MODELSYNC_VENV_DIR:-$root/.tools}/kserve-storage"
# The stamp names the pins, so changing one reinstalls.
stamp="$venv/.installed-$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python="$(command -v python3 || true)"
  [ -n "$python" ] || { echo "ensure-kserve-storage: python3 is required" >&2; exit 1; }
  "$python" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] < (3, 14)))' || {
    echo "ensure-kserve-storage: kserve-storage needs Python 3.10 to 3.13; $python is $("$python" --version 2>&1)" >&2
    exit 1
  }
  echo "ensure-kserve-storage: installing ${pins[*]} into $venv (first run only, ~1 min)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2
  "$venv/bin/python" -c 'from kserve_storage import Storage' >&2
  touch "$stamp"
fi
echo "$venv/bin"
