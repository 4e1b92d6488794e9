# Shared helpers for scripts/bench-*.sh (sourced, not run).
# shellcheck shell=bash

bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The release binary: $MODELSYNC_BIN, else built with `cargo build --release`.
bench_binary() {
  if [ -n "${MODELSYNC_BIN:-}" ]; then
    echo "$MODELSYNC_BIN"
    return
  fi
  (cd "$bench_root" && cargo build --release --quiet --bin modelsync) >&2
  echo "${CARGO_TARGET_DIR:-$bench_root/target}/release/modelsync"
}

# GNU time, for peak RSS. Falls back to sampling /proc (coarser) if absent.
if [ -x /usr/bin/time ]; then
  bench_time=/usr/bin/time
else
  bench_time=""
  echo "bench: /usr/bin/time missing (apt-get install time); peak RSS is sampled from /proc" >&2
fi

# measure OUTVAR CMD... : runs CMD (stdout to $BENCH_OUT or /dev/null), sets
# OUTVAR to "WALL_S RSS_MIB EXIT". Wall is whole-process, in ns precision.
measure() {
  local __var=$1
  shift
  local tf start end rc rss
  tf="$(mktemp)"
  start=$(date +%s%N)
  if [ -n "$bench_time" ]; then
    set +e
    "$bench_time" -f "%M" -o "$tf" "$@" >"${BENCH_OUT:-/dev/null}" 2>>"${BENCH_ERR:-/dev/null}"
    rc=$?
    set -e
    end=$(date +%s%N)
    rss=$(tail -1 "$tf")
  else
    "$@" >"${BENCH_OUT:-/dev/null}" 2>>"${BENCH_ERR:-/dev/null}" &
    local pid=$! peak=0 cur
    while kill -0 "$pid" 2>/dev/null; do
      cur=$(awk '/VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      [ "${cur:-0}" -gt "$peak" ] && peak=$cur
      sleep 0.01
    done
    set +e
    wait "$pid"
    rc=$?
    set -e
    end=$(date +%s%N)
    rss=$peak
  fi
  rm -f "$tf"
  printf -v "$__var" '%s %s %s' \
    "$(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.3f", (e-s)/1e9}')" \
    "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')" "$rc"
}

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }

# A free loopback TCP port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
