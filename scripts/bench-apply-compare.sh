#!/usr/bin/env bash
# Benchmark (issue 13): `modelsync apply` against the same work scripted with
# MLflow's Python client (scripts/bench/python_client_apply.py), side by side
# in one run on ONE MLflow 3.17.2 server (sqlite, the server's default
# workers), each side on its own model names.
#
# For each N (default: 100 1000), N manifests x 5 versions (gen_manifests.py):
#   1. apply from empty: modelsync, then the Python client
#   2. a promotion wave (gen_manifests.py --wave: a 6th version, Production
#      and champion move to it): modelsync, then the Python client
# Each step: requests (the server's access log; per model by endpoint in
# $work/endpoints.txt), wall (whole process), peak RSS.
#
# Usage: scripts/bench-apply-compare.sh [N...]
# env: MODELSYNC_BIN, MLFLOW_BIN, WORKERS (empty: the server's default), KEEP=1
set -euo pipefail
source "$(dirname "$0")/bench/lib.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
bin="$(bench_binary)"
mlflow_bin="${MLFLOW_BIN:-$("$bench_root/scripts/ensure-mlflow.sh" 3.17.2)}"
work="$(mktemp -d "${TMPDIR:-/tmp}/modelsync-bench-apply.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
workers=()
[ -z "${WORKERS:-}" ] || workers=(--workers "$WORKERS")
port=$(free_port)
uri="http://127.0.0.1:$port"
log="$work/server.log"
mkdir -p "$work/artifacts"
PYTHONUNBUFFERED=1 setsid "$mlflow_bin/mlflow" server --backend-store-uri "sqlite:///$work/mlflow.db" \
  --default-artifact-root "$work/artifacts" --host 127.0.0.1 --port "$port" "${workers[@]}" \
  >"$log" 2>"$log.err" &
server_pid=$!
for ((i = 0; i < 300; i++)); do
  curl -sf "$uri/health" >/dev/null && break
  sleep 1
done
echo "binary: $bin; server $uri (workers: ${WORKERS:-default}), up after ${i}s; work: $work" >&2
for _ in 1 2 3 4; do curl -sf "$uri/api/2.0/mlflow/registered-models/search" >/dev/null; done

# step LABEL N CMD... : one measured run; prints a table row.
step() {
  local label=$1 n=$2 from res counts
  shift 2
  from=$(wc -l <"$log")
  BENCH_ERR="$work/$label.err" BENCH_OUT="$work/$label.out" measure res "$@"
  [ "${res##* }" = 0 ] || { echo "bench: $label exited ${res##* }; see $work/$label.{out,err}" >&2; exit 1; }
  sleep 0.5
  counts=$(python3 "$bench_root/scripts/bench/count_requests.py" "$log" "$from")
  { echo "### $label ($n models)"; python3 "$bench_root/scripts/bench/count_requests.py" "$log" "$from" --endpoints | tail -n +2; } >>"$work/endpoints.txt"
  local total=${counts##*total=}
  total=${total%% *}
  printf '| %s | %s | %s | %s | %.1f | %s s | %s MiB |\n' "$n" "$label" \
    "$(echo "$counts" | sed -E 's/.*reads=([0-9]+).*/\1/')" "$(echo "$counts" | sed -E 's/.*writes=([0-9]+).*/\1/')" \
    "$(awk -v t="$total" -v n="$n" 'BEGIN{print t/n}')" "${res%% *}" "$(echo "$res" | cut -d' ' -f2)"
  grep -h 'loop_s' "$work/$label.err" >&2 || true
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

export -f bulk_reads
export uri
echo "| N models × 5 versions | run | reads | writes | requests per model | wall | peak RSS |"
echo "|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  g="$bench_root/scripts/bench/gen_manifests.py"
  python3 "$g" "$n" "$work/ms-$n" --prefix "ms$n"
  python3 "$g" "$n" "$work/py-$n" --prefix "py$n"
  python3 "$g" "$n" "$work/ms-wave-$n" --prefix "ms$n" --wave
  python3 "$g" "$n" "$work/py-wave-$n" --prefix "py$n" --wave
  step "modelsync apply from empty" "$n" "$bin" --registry "$uri" apply "$work/ms-$n"
  step "Python client apply from empty" "$n" "$mlflow_bin/python" "$bench_root/scripts/bench/python_client_apply.py" --tracking-uri "$uri" "$work/py-$n"
  step "modelsync promotion wave" "$n" "$bin" --registry "$uri" apply "$work/ms-wave-$n"
  step "Python client promotion wave" "$n" "$mlflow_bin/python" "$bench_root/scripts/bench/python_client_apply.py" --tracking-uri "$uri" "$work/py-wave-$n" --wave
  "$bin" --registry "$uri" plan "$work/ms-wave-$n" --detailed-exitcode >/dev/null || { echo "bench: modelsync did not converge" >&2; exit 1; }
  step "modelsync plan (converged)" "$n" "$bin" --registry "$uri" plan "$work/ms-wave-$n" --detailed-exitcode
  step "bulk reads alone (curl)" "$n" bash -c bulk_reads
done
echo
echo "Requests by endpoint:"
sed 's/^/    /' "$work/endpoints.txt"
