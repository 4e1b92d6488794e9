#!/usr/bin/env bash
# Benchmark: plan/apply on the embedded registry (issue 2).
#
# For each N (default: 200 1000) writes N RegisteredModel manifests with 5
# versions each (s3:// sources, Production/Staging, champion/challenger) into
# a temp dir, then with the release binary:
#   1. apply from an empty registry file   (wall, peak RSS)   x RUNS, fresh file each
#   2. plan on the converged registry      (wall, peak RSS)   x RUNS
#   3. a no-op apply                       (wall, peak RSS)   x RUNS; checks the file stays byte-identical
# and prints one Markdown table row per step (median of RUNS, min-max).
#
# Usage: scripts/bench-embedded.sh [N...]     env: RUNS (default 3), MODELSYNC_BIN, KEEP=1
set -euo pipefail
source "$(dirname "$0")/bench/lib.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(200 1000)
runs="${RUNS:-3}"
bin="$(bench_binary)"
work="$(mktemp -d "${TMPDIR:-/tmp}/modelsync-bench-embedded.XXXXXX")"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
echo "binary: $bin ($("$bin" --version)); work dir: $work; runs: $runs" >&2

row() { # label values...
  local label=$1
  shift
  local walls rsss
  walls=$(printf '%s\n' "$@" | awk '{print $1}')
  rsss=$(printf '%s\n' "$@" | awk '{print $2}')
  printf '| %s | %s s (%s–%s) | %s MiB |\n' "$label" \
    "$(echo "$walls" | median)" "$(echo "$walls" | sort -g | head -1)" "$(echo "$walls" | sort -g | tail -1)" \
    "$(echo "$rsss" | sort -g | tail -1)"
}

check_rc() { # result expected what
  local rc=${1##* }
  [ "$rc" = "$2" ] || { echo "bench: $3 exited $rc, expected $2 (see $work/stderr.log)" >&2; exit 1; }
}

echo "| N models × 5 versions | step | wall (median, min–max) | peak RSS (max) |"
echo "|---|---|---|---|"
for n in "${sizes[@]}"; do
  dir="$work/manifests-$n"
  python3 "$bench_root/scripts/bench/gen_manifests.py" "$n" "$dir"
  reg="$work/registry-$n.json"
  export BENCH_ERR="$work/stderr.log"
  applies=() plans=() noops=()
  for ((r = 1; r <= runs; r++)); do
    rm -f "$reg" "$reg.lock"
    measure res "$bin" --registry "file:$reg" apply "$dir"
    check_rc "$res" 0 "apply from empty"
    applies+=("$res")
  done
  "$bin" --registry "file:$reg" plan "$dir" --detailed-exitcode >/dev/null 2>>"$BENCH_ERR" ||
    { echo "bench: plan after apply is not empty" >&2; exit 1; }
  for ((r = 1; r <= runs; r++)); do
    measure res "$bin" --registry "file:$reg" plan "$dir" --detailed-exitcode
    check_rc "$res" 0 "plan"
    plans+=("$res")
  done
  before=$(sha256sum <"$reg")
  for ((r = 1; r <= runs; r++)); do
    measure res "$bin" --registry "file:$reg" apply "$dir"
    check_rc "$res" 0 "no-op apply"
    noops+=("$res")
  done
  [ "$(sha256sum <"$reg")" = "$before" ] || { echo "bench: no-op apply changed the registry file" >&2; exit 1; }
  size=$(du -k "$reg" | cut -f1)
  row "$n | \`apply\` from empty" "${applies[@]}"
  row "$n | \`plan\` (converged, no changes)" "${plans[@]}"
  row "$n | \`apply\` no-op (file byte-identical: yes)" "${noops[@]}"
  echo "N=$n: registry file ${size} KiB, $(ls "$dir" | wc -l) manifest files" >&2
done
