#!/usr/bin/env bash
# Installs a pinned actionlint (the GitHub Actions workflow linter) and
# ShellCheck (which actionlint runs on `run:` scripts) into a project-local
# virtualenv, once (scripts/ensure-pytool.sh actionlint), and prints the
# venv's bin directory (holding `actionlint` and `shellcheck`).
# Usage: scripts/ensure-actionlint.sh
set -euo pipefail
exec "$(dirname "$0")/ensure-pytool.sh" actionlint
