#!/usr/bin/env bash
# Benchmark (issue 13): `modelsync apply` against the same work scripted with
# MLflow's Python client (scripts/bench/python_client_apply.py), side by side
# in one run on ONE MLflow 3.17.2 server (sqlite, or PostgreSQL with
# BACKEND=postgres; the server's default workers, or WORKERS), each side on
# its own model names. The server is warmed first (warm_server: every
# worker pays for its first queries; a parallel applier would meet them all
# at once).
#
# For each N (default: 100 1000), N manifests x 5 versions (gen_manifests.py):
#   1. apply from empty: modelsync, then the Python client
#   2. a promotion wave (gen_manifests.py --wave: a 6th version, Production
#      and champion move to it): modelsync, then the Python client
# Each step: requests (the server's access log; per model by endpoint in
# $work/endpoints.txt), wall (whole process), peak RSS; and, per endpoint,
# the time each request took as its sender saw it (modelsync's `-vv`
# request log; the Python client's --timings), and on PostgreSQL the
# database's own time (pg_stat_statements, reset before each step).
#
# Usage: scripts/bench-apply-compare.sh [N...]
# env: MODELSYNC_BIN, MLFLOW_BIN, WORKERS (empty: the server's default), KEEP=1,
#   BACKEND=sqlite|postgres (PostgreSQL: a private cluster, scripts/bench/lib.sh;
#   the client then archives explicitly, since MLflow 3.17's PostgreSQL store
#   fails transition-stage with archive_existing_versions=true),
#   ONLY=empty (only the applies from empty), RUNS=K (K rounds of the steps,
#   each on new names: ms<N>r<k>, py<N>r<k>)
set -euo pipefail
source "$(dirname "$0")/bench/lib.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
bin="$(bench_binary)"
mlflow_bin="${MLFLOW_BIN:-$("$bench_root/scripts/ensure-mlflow.sh" 3.17.2)}"
work="$(mktemp -d "${TMPDIR:-/tmp}/modelsync-bench-apply.XXXXXX")"
server_pid=""
backend="${BACKEND:-sqlite}"
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  stop_postgres
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
workers=()
[ -z "${WORKERS:-}" ] || workers=(--workers "$WORKERS")
port=$(free_port)
uri="http://127.0.0.1:$port"
log="$work/server.log"
mkdir -p "$work/artifacts"
store="sqlite:///$work/mlflow.db"
client_flags=()
case "$backend" in
  sqlite) ;;
  postgres)
    start_postgres "$work"
    store="$pg_uri"
    client_flags=(--archive-explicit)
    ;;
  *) echo "bench: BACKEND is sqlite or postgres, not $backend" >&2; exit 2 ;;
esac
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false PYTHONUNBUFFERED=1 setsid "$mlflow_bin/mlflow" server --backend-store-uri "$store" \
  --default-artifact-root "$work/artifacts" --host 127.0.0.1 --port "$port" "${workers[@]}" \
  >"$log" 2>"$log.err" &
server_pid=$!
for ((i = 0; i < 300; i++)); do
  curl -sf "$uri/health" >/dev/null && break
  sleep 1
done
echo "binary: $bin; server $uri ($backend, workers: ${WORKERS:-default}), up after ${i}s; work: $work" >&2

# Warms every worker: bursts of reads on many connections (the kernel
# spreads them over the workers), then throwaway models written and deleted
# eight at a time (create, a version, a stage, an alias, a tag, delete).
warm_server() {
  local i api="$uri/api/2.0/mlflow" pids=()
  for ((i = 0; i < 12; i++)); do
    curl -m 120 -sf -o /dev/null "$api/registered-models/search?max_results=10" & pids+=($!)
    curl -m 120 -sf -o /dev/null "$api/model-versions/search?max_results=10" & pids+=($!)
    curl -m 120 -s -o /dev/null "$api/registered-models/get?name=bench-warm-missing" & pids+=($!)
    curl -m 120 -s -o /dev/null "$api/model-versions/search?filter=name%3D%27bench-warm-missing%27" & pids+=($!)
    wait "${pids[@]}" || true
    pids=()
  done
  for ((i = 0; i < 8; i++)); do
    (
      set +e; m="bench-warm-$i" j=(-m 120 -sf -o /dev/null -H 'Content-Type: application/json')
      curl "${j[@]}" -X POST "$api/registered-models/create" -d "{\"name\":\"$m\",\"tags\":[{\"key\":\"k\",\"value\":\"v\"}]}"
      curl "${j[@]}" -X POST "$api/model-versions/create" -d "{\"name\":\"$m\",\"source\":\"s3://warm/$m\",\"tags\":[{\"key\":\"k\",\"value\":\"v\"}]}"
      curl "${j[@]}" -X POST "$api/model-versions/transition-stage" -d "{\"name\":\"$m\",\"version\":\"1\",\"stage\":\"Staging\",\"archive_existing_versions\":false}"
      curl "${j[@]}" -X POST "$api/registered-models/alias" -d "{\"name\":\"$m\",\"alias\":\"warm\",\"version\":\"1\"}"
      curl "${j[@]}" -X POST "$api/registered-models/set-tag" -d "{\"name\":\"$m\",\"key\":\"k2\",\"value\":\"v\"}"
      curl "${j[@]}" -G "$api/registered-models/get" --data-urlencode "name=$m"
      curl "${j[@]}" -X DELETE "$api/registered-models/delete" -d "{\"name\":\"$m\"}"
    ) &
    pids+=($!)
  done
  wait "${pids[@]}" || true
}
warm_server
[ "$backend" != postgres ] || pg_statements >/dev/null
echo "warmed; load: $(uptime)" >&2

# The CPU the server (MLflow's processes; PostgreSQL's) has spent so far.
cpu_reading() {
  python3 "$bench_root/scripts/bench/cpu_ms.py" "$server_pid" \
    "$([ "$backend" != postgres ] || head -1 "$pg_dir/data/postmaster.pid")"
}
# cpu_per_model BEFORE AFTER N : "A + B ms" per model between two readings.
cpu_per_model() {
  python3 - "$@" <<'PY'
import sys
a, b = (dict(kv.split("=") for kv in r.split()) for r in sys.argv[1:3])
n = int(sys.argv[3])
d = {k: (int(b[k]) - int(a[k])) / n for k in a}
print(f"{d['server_cpu_ms']:.0f} + {d['db_cpu_ms']:.0f} ms")
PY
}

# step LABEL N CMD... : one measured run; prints a table row.
step() {
  local label=$1 n=$2 from res counts
  shift 2
  from=$(wc -l <"$log")
  cpu0=$(cpu_reading)
  BENCH_ERR="$work/$label.err" BENCH_OUT="$work/$label.out" measure res "$@"
  [ "${res##* }" = 0 ] || { echo "bench: $label exited ${res##* }; see $work/$label.{out,err}" >&2; exit 1; }
  sleep 0.5
  cpu1=$(cpu_reading)
  counts=$(python3 "$bench_root/scripts/bench/count_requests.py" "$log" "$from")
  { echo "### $label ($n models)"; python3 "$bench_root/scripts/bench/count_requests.py" "$log" "$from" --endpoints | tail -n +2; } >>"$work/endpoints.txt"
  local total=${counts##*total=}
  total=${total%% *}
  printf '| %s | %s | %s | %s | %.1f | %s s | %s | %s MiB |\n' "$n" "$label" \
    "$(echo "$counts" | sed -E 's/.*reads=([0-9]+).*/\1/')" "$(echo "$counts" | sed -E 's/.*writes=([0-9]+).*/\1/')" \
    "$(awk -v t="$total" -v n="$n" 'BEGIN{print t/n}')" "${res%% *}" \
    "$(cpu_per_model "$cpu0" "$cpu1" "$n")" "$(echo "$res" | cut -d' ' -f2)"
  grep -h 'loop_s' "$work/$label.err" >&2 || true
  {
    echo "  client-side time per endpoint (count, total, mean, per model):"
    python3 "$bench_root/scripts/bench/endpoint_times.py" "$work/$label.err" "$n"
    if [ "$backend" = postgres ]; then
      echo "  PostgreSQL (pg_stat_statements): total, then the costliest statements (ms | calls | mean ms | statement):"
      pg_statements | sed 's/^/    /'
    fi
  } >>"$work/endpoints.txt"
}

# The bulk reads a plan makes, alone, with curl: the registered-models/search
# pages in sequence beside the one model-versions/search page.
bulk_reads() {
  local token="" body models
  (
    while :; do
      body=$(curl -sfG "$uri/api/2.0/mlflow/registered-models/search" --data-urlencode max_results=1000 \
        --data-urlencode "order_by=name ASC" ${token:+--data-urlencode "page_token=$token"})
      token=$(printf '%s' "$body" | python3 -c 'import sys,json; print(json.load(sys.stdin).get("next_page_token",""))')
      [ -n "$token" ] || break
    done
  ) &
  models=$!
  curl -sfG -o /dev/null "$uri/api/2.0/mlflow/model-versions/search" --data-urlencode max_results=200000 \
    --data-urlencode "order_by=name ASC" --data-urlencode "order_by=version_number ASC"
  wait "$models"
}

# converged DIR : modelsync's plan of DIR has no changes (not measured; the
# database's statement counters are reset after it).
converged() {
  "$bin" --registry "$uri" plan "$1" --detailed-exitcode >/dev/null || { echo "bench: modelsync did not converge on $1" >&2; exit 1; }
  [ "$backend" != postgres ] || pg_statements >/dev/null
}

export -f bulk_reads
export uri
echo "| N models × 5 versions | run | reads | writes | requests per model | wall | server CPU per model (MLflow + PostgreSQL) | peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
py_apply=("$mlflow_bin/python" "$bench_root/scripts/bench/python_client_apply.py" --tracking-uri "$uri" "${client_flags[@]}")
for n in "${sizes[@]}"; do
 for ((run = 1; run <= ${RUNS:-1}; run++)); do
  [ "${RUNS:-1}" = 1 ] && r="" || r="r$run"
  g="$bench_root/scripts/bench/gen_manifests.py"
  python3 "$g" "$n" "$work/ms-$n$r" --prefix "ms$n$r"
  python3 "$g" "$n" "$work/py-$n$r" --prefix "py$n$r"
  python3 "$g" "$n" "$work/ms-wave-$n$r" --prefix "ms$n$r" --wave
  python3 "$g" "$n" "$work/py-wave-$n$r" --prefix "py$n$r" --wave
  echo "load before run $run: $(uptime)" >&2
  step "modelsync apply from empty $r" "$n" "$bin" -vv --registry "$uri" apply "$work/ms-$n$r"
  step "Python client apply from empty $r" "$n" "${py_apply[@]}" --timings "$work/Python client apply from empty $r.err" "$work/py-$n$r"
  converged "$work/ms-$n$r"
  [ "${ONLY:-}" != empty ] || continue
  step "modelsync promotion wave $r" "$n" "$bin" -vv --registry "$uri" apply "$work/ms-wave-$n$r"
  step "Python client promotion wave $r" "$n" "${py_apply[@]}" --timings "$work/Python client promotion wave $r.err" "$work/py-wave-$n$r" --wave
  converged "$work/ms-wave-$n$r"
  step "modelsync plan (converged)" "$n" "$bin" --registry "$uri" plan "$work/ms-wave-$n$r" --detailed-exitcode
  step "bulk reads alone (curl)" "$n" bash -c bulk_reads
 done
done
echo "load at the end: $(uptime)" >&2
echo
echo "Requests by endpoint:"
sed 's/^/    /' "$work/endpoints.txt"
