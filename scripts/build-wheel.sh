#!/usr/bin/env bash
# Builds the Python wheel: the release `modelsync` binary (maturin, bindings
# "bin", pyproject.toml) with `python -m modelsync`, for this machine's
# platform, manylinux-tagged after maturin's audit (only glibc-family base
# libraries linked). Installs maturin into a project venv when missing
# (scripts/ensure-pytool.sh maturin).
# Prints the wheel's path on stdout and its size on stderr.
# Usage: scripts/build-wheel.sh [--out DIR] [MATURIN ARGS...]
#   DIR defaults to ${CARGO_TARGET_DIR:-target}/wheels; the release workflow
#   passes --out dist.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/wheels"
if [ "${1:-}" = --out ]; then
  out="${2:?--out needs a directory}"
  shift 2
fi
# Building needs protoc (etcd-client generates its gRPC code): installed
# when missing. The wheel itself needs neither protoc nor libssl.
scripts/ensure-build-deps.sh
maturin="$(scripts/ensure-pytool.sh maturin)/maturin"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
mkdir -p "$out"
# Only this version's wheels: a stale one never hides a failed build.
rm -f "$out"/modelsync-"$version"-*.whl
start=$(date +%s)
"$maturin" build --release --locked --out "$out" "$@" >&2
wheel="$(ls "$out"/modelsync-"$version"-*.whl)"
[ "$(echo "$wheel" | wc -l)" = 1 ] || { echo "build-wheel: expected one wheel in $out, found: $wheel" >&2; exit 1; }
size=$(stat -c %s "$wheel")
echo "build-wheel: $wheel ($(awk -v s="$size" 'BEGIN{printf "%.1f MiB", s/1048576}'), $size bytes) in $(( $(date +%s) - start )) s" >&2
echo "$wheel"
