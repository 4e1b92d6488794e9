#!/usr/bin/env bash
# Benchmark: modelsync against a real MLflow server (issue 3), side by side
# with the same reconciliation written with MLflow's Python client
# (scripts/bench/python_client_plan.py).
#
# For each N (default: 200 1000), N RegisteredModel manifests x 5 versions:
#   (b) `modelsync apply` from an empty server (sqlite)  -> requests, wall, RSS.
#       This also populates the registry; the DB file is cached in $BENCH_CACHE
#       and reused on later runs (then (b) is skipped unless APPLY_FROM_EMPTY=1,
#       which measures it on a throw-away DB).
#   A fresh server on a copy of the populated DB, then RUNS times each:
#   (a) `modelsync plan --detailed-exitcode` (must be exit 0: converged)
#   (c) `python_client_plan.py` (must report no changes)
#   (d) `modelsync apply` no-op (must make 0 writes)
# Requests are the lines of the server's access log during each run.
#
# Usage: scripts/bench-mlflow.sh [N...]
# env: RUNS (3), MODELSYNC_BIN, MLFLOW_BIN (dir with mlflow + python; default
#      from scripts/ensure-mlflow.sh), BENCH_CACHE (default target/bench-mlflow),
#      APPLY_FROM_EMPTY=1, KEEP=1 (keep the work dir)
set -euo pipefail
source "$(dirname "$0")/bench/lib.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(200 1000)
runs="${RUNS:-3}"
bin="$(bench_binary)"
mlflow_bin="${MLFLOW_BIN:-$("$bench_root/scripts/ensure-mlflow.sh" 3.17.2)}"
cache="${BENCH_CACHE:-${CARGO_TARGET_DIR:-$bench_root/target}/bench-mlflow}"
mkdir -p "$cache"
work="$(mktemp -d "${TMPDIR:-/tmp}/modelsync-bench-mlflow.XXXXXX")"
server_pid=""
cleanup() {
  stop_server
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
echo "binary: $bin ($("$bin" --version)); mlflow: $("$mlflow_bin/mlflow" --version 2>/dev/null | tail -1); work: $work; runs: $runs" >&2

# start_server DB LOG: mlflow server in its own process group, waits for /health.
start_server() {
  local db=$1 log=$2 i
  port=$(free_port)
  mkdir -p "$work/artifacts"
  PYTHONUNBUFFERED=1 setsid "$mlflow_bin/mlflow" server --backend-store-uri "sqlite:///$db" \
    --default-artifact-root "$work/artifacts" --host 127.0.0.1 --port "$port" --workers 2 \
    >"$log" 2>"$log.err" &
  server_pid=$!
  for ((i = 0; i < 300; i++)); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { echo "bench: mlflow server died, see $log.err" >&2; exit 1; }
    sleep 1
  done
  uri="http://127.0.0.1:$port"
  echo "server $uri (pid $server_pid) on $db, up after ${i}s" >&2
}
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}

lines() { wc -l <"$1"; }
# counted LOG FROM -> "reads writes"
counted() {
  sleep 0.3
  python3 "$bench_root/scripts/bench/count_requests.py" "$1" "$2" | sed -E 's/reads=([0-9]+) writes=([0-9]+).*/\1 \2/'
}
endpoints() { python3 "$bench_root/scripts/bench/count_requests.py" "$1" "$2" --endpoints | tail -n +2; }

# one labelled, measured run: run LOG LABEL EXPECTED_RC CMD... ; appends "wall rss reads writes" to $results
run() {
  local log=$1 label=$2 want=$3 from res rw
  shift 3
  from=$(lines "$log")
  BENCH_ERR="$work/$label.err" BENCH_OUT="$work/$label.out" measure res "$@"
  [ "${res##* }" = "$want" ] || { echo "bench: $label exited ${res##* }, expected $want; see $work/$label.{out,err}" >&2; exit 1; }
  rw=$(counted "$log" "$from")
  echo "${res% *} $rw" >>"$results"
  echo "$label: wall=${res%% *}s rss=$(echo "$res" | cut -d' ' -f2)MiB reads/writes=$rw" >&2
  { echo "### $label"; endpoints "$log" "$from"; } >>"$work/endpoints.txt"
}

summary() { # results-file label -> table row
  local f=$1 label=$2
  local walls rss reads writes
  walls=$(awk '{print $1}' "$f")
  rss=$(awk '{print $2}' "$f" | sort -g | tail -1)
  reads=$(awk '{print $3}' "$f" | sort -u | paste -sd/)
  writes=$(awk '{print $4}' "$f" | sort -u | paste -sd/)
  printf '| %s | %s | %s | %s s (%s–%s) | %s MiB |\n' "$label" "$reads" "$writes" \
    "$(echo "$walls" | median)" "$(echo "$walls" | sort -g | head -1)" "$(echo "$walls" | sort -g | tail -1)" "$rss"
}

table=()
for n in "${sizes[@]}"; do
  dir="$work/manifests-$n"
  python3 "$bench_root/scripts/bench/gen_manifests.py" "$n" "$dir"
  db="$cache/mlflow-$n-x5.db"
  if [ ! -f "$db" ] || [ -n "${APPLY_FROM_EMPTY:-}" ]; then
    target="$work/empty-$n.db"
    start_server "$target" "$work/server-apply-$n.log"
    results="$work/apply-$n.txt"
    run "$work/server-apply-$n.log" "apply-from-empty-$n" 0 "$bin" --registry "$uri" apply "$dir"
    stop_server
    table+=("$(summary "$results" "$n | modelsync \`apply\` from empty")")
    [ -f "$db" ] || cp "$target" "$db"
  fi
  cp "$db" "$work/plan-$n.db"
  log="$work/server-plan-$n.log"
  start_server "$work/plan-$n.db" "$log"
  # warm both server workers (lazy imports, sqlite page cache) with the reads
  # both sides make; these requests are before any measured run
  first=$(cd "$dir" && set -- *.yaml && echo "$1")
  for _ in 1 2 3 4; do
    curl -sf "$uri/api/2.0/mlflow/registered-models/search?max_results=1000" >/dev/null
    curl -sf "$uri/api/2.0/mlflow/model-versions/search?max_results=200000" >/dev/null
    curl -sf "$uri/api/2.0/mlflow/registered-models/get?name=${first%.yaml}" >/dev/null
  done
  : >"$work/plan-ms-$n.txt"
  : >"$work/plan-py-$n.txt"
  : >"$work/noop-$n.txt"
  for ((r = 1; r <= runs; r++)); do
    results="$work/plan-ms-$n.txt"
    run "$log" "modelsync-plan-$n-$r" 0 "$bin" --registry "$uri" plan "$dir" --detailed-exitcode
    results="$work/plan-py-$n.txt"
    run "$log" "python-client-plan-$n-$r" 0 "$mlflow_bin/python" "$bench_root/scripts/bench/python_client_plan.py" --tracking-uri "$uri" "$dir"
    grep -h 'loop_s' "$work/python-client-plan-$n-$r.err" | sed "s/^/  python-client-plan-$n-$r: /" >&2
  done
  for ((r = 1; r <= runs; r++)); do
    results="$work/noop-$n.txt"
    run "$log" "modelsync-noop-apply-$n-$r" 0 "$bin" --registry "$uri" apply "$dir"
  done
  stop_server
  awk '{print $4}' "$work/noop-$n.txt" | grep -qv '^0$' && echo "bench: WARNING: the no-op apply wrote" >&2
  loops=$(grep -h loop_s "$work"/python-client-plan-"$n"-*.err | sed -E 's/.*loop_s=([0-9.]+).*/\1/' | median)
  imports=$(grep -h import_s "$work"/python-client-plan-"$n"-*.err | sed -E 's/.*import_s=([0-9.]+).*/\1/' | median)
  table+=("$(summary "$work/plan-ms-$n.txt" "$n | modelsync \`plan\` (converged)")")
  table+=("$(summary "$work/plan-py-$n.txt" "$n | Python client plan (converged; import ${imports} s, loop ${loops} s)")")
  table+=("$(summary "$work/noop-$n.txt" "$n | modelsync \`apply\` no-op")")
done
echo
echo "| N models × 5 versions | run | read requests | write requests | wall, whole process (median, min–max) | peak RSS |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${table[@]}"
echo
echo "Requests per endpoint (from the access log):"
awk '/^###/{label=$2} !/^###/{print label": "$0}' "$work/endpoints.txt" | grep -E -- '-1: |from-empty' | sed 's/^/    /'
