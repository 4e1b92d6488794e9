#!/usr/bin/env bash
# Plan figures on MLflow 3.17.2 with a PostgreSQL backend store ($WORKERS
# server workers, default 4): N models x $VERSIONS versions (default N = 1000
# and 10000, 5 versions), seeded with SQL (scripts/bench/seed.sh; only reads
# are measured), one manifest file per model in a git repository. Prints a
# Markdown table; progress and per-request timings go to stderr.
#
# Usage: [VERSIONS=5] [WORKERS=4] [WATCH=K] [SKIP_PYTHON=1] [MODELSYNC_BIN=PATH]
#        scripts/bench-postgres.sh [N...]
# Per N, one after another on the converged registry (requests per endpoint
# from the server's access log, wall time, modelsync's peak RSS from GNU
# time's %M):
#   - a full `modelsync plan` (no changes, exit 0 checked);
#   - `plan --model bench-<N/2>` (issue 23 row a: one model by name);
#   - `plan --changed-since HEAD` with one model's file edited in the working
#     tree (exit 2 checked: that one change), then the edit reverted;
#   - the bulk reads alone with curl (the registered-models/search pages one
#     after another, beside the one model-versions/search page);
#   - WATCH=K: the daemon for K back-to-back no-op reconciles (--resync 1ms),
#     requests and seconds per reconcile, and its RSS (VmRSS from /proc) at
#     reconcile 1, 10, 50, 100, 500, 1000 and K;
#   - unless SKIP_PYTHON: MLflow's Python client, per model
#     (get_registered_model + search_model_versions).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=bench/lib.sh
source scripts/bench/lib.sh
# shellcheck source=bench/seed.sh
source scripts/bench/seed.sh
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
nv="${VERSIONS:-5}"
workers="${WORKERS:-4}"

scripts/ensure-system-deps.sh
bin="$(scripts/ensure-mlflow.sh 3.17.2 servers)"
modelsync="$(bench_binary)"

work="$(mktemp -d /tmp/modelsync-bench-pg.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 2
  rm -rf "$work"
}
trap cleanup EXIT

bench_pg_start "$work"

port="$(free_port)"
url="http://127.0.0.1:$port"
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$bin/mlflow" server \
  --backend-store-uri "postgresql+psycopg://mlflow@127.0.0.1:$pg_port/mlflow" \
  --default-artifact-root "$work/artifacts" --host 127.0.0.1 --port "$port" --workers "$workers" \
  >"$work/access.log" 2>"$work/server.log" &
pids+=($!)
start=$(date +%s)
until curl -sf "$url/health" >/dev/null; do
  sleep 0.5
  [ $(( $(date +%s) - start )) -lt 300 ] || { tail -20 "$work/server.log" >&2; exit 1; }
done
echo "bench-postgres: MLflow on PostgreSQL ($workers workers) up after $(( $(date +%s) - start )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

requests() { bench_requests "$work/access.log"; }
now() { date +%s.%N; }

# The bulk reads alone, with curl: model pages in sequence (each needs the
# previous token) beside the one version page.
bulk_reads() {
  local token="" body models
  (
    while :; do
      body=$(curl -sfG "$url/api/2.0/mlflow/registered-models/search" --data-urlencode max_results=1000 \
        --data-urlencode "order_by=name ASC" ${token:+--data-urlencode "page_token=$token"})
      token=$(printf '%s' "$body" | "$bin/python" -c 'import sys,json; print(json.load(sys.stdin).get("next_page_token",""))')
      [ -n "$token" ] || break
    done
  ) &
  models=$!
  curl -sfG -o /dev/null "$url/api/2.0/mlflow/model-versions/search" --data-urlencode max_results=200000 \
    --data-urlencode "order_by=name ASC" --data-urlencode "order_by=version_number ASC"
  wait "$models"
}

# row LABEL EXIT CMD...: runs CMD once (its exit code must be EXIT) and
# prints its row: requests (per endpoint), wall, peak RSS.
row() {
  local label=$1 expect=$2 before after m wall rss rc
  shift 2
  before=$(requests)
  BENCH_OUT="$work/out.txt" BENCH_ERR="$work/err.txt" measure m "$@"
  after=$(requests)
  read -r wall rss rc <<<"$m"
  [ "$rc" = "$expect" ] || {
    echo "bench-postgres: $label exited $rc, not $expect:" >&2
    head -20 "$work/out.txt" "$work/err.txt" >&2
    exit 1
  }
  printf '| %s x %s | %s | %s (%s) | %s | %s MiB |\n' "$n" "$nv" "$label" "$((after - before))" \
    "$(bench_endpoints "$work/access.log" "$before" "$after")" "$wall" "$rss"
}

# reconciles ADDR: modelsync_reconciles_total, every outcome.
reconciles() { curl -s "http://$1/metrics" | awk '/^modelsync_reconciles_total/ {s+=$2} END {print s+0}'; }

# watch_rss DIR K: the daemon for K back-to-back reconciles; its row.
watch_rss() {
  local dir=$1 k=$2 wport addr wpid at rss samples="" before after t0 t1 r0 r1 c
  wport="$(free_port)"
  addr="127.0.0.1:$wport"
  MODELSYNC_HTTP_TIMEOUT=300s "$modelsync" watch "$dir" --registry "$url" --listen "$addr" \
    --resync 1ms -q 2>>"$work/daemon.log" &
  wpid=$!
  pids+=("$wpid")
  for c in 1 10 50 100 500 1000 "$k"; do
    [ "$c" -le "$k" ] || continue
    until at=$(reconciles "$addr") && [ "$at" -ge "$c" ]; do
      kill -0 "$wpid" || { tail -20 "$work/daemon.log" >&2; exit 1; }
      sleep 0.2
    done
    rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$wpid/status")
    case " $samples" in *" $at: "*) ;; *) samples+="${samples:+, }$at: $rss MiB" ;; esac
    if [ "$c" -eq 1 ]; then before=$(requests); t0=$(now); r0=$at; fi
    echo "bench-postgres: $n: daemon reconcile $at, RSS $rss MiB" >&2
  done
  r1=$at; t1=$(now); after=$(requests)
  kill -TERM "$wpid"; wait "$wpid" || true
  printf '| %s x %s | daemon no-op reconciles, %s in a row (--resync 1ms) | %s per reconcile | %.2f per reconcile | RSS at reconcile %s |\n' \
    "$n" "$nv" "$r1" "$(echo "scale=1; ($after - $before) / ($r1 - $r0)" | bc)" \
    "$(echo "($t1 - $t0) / ($r1 - $r0)" | bc -l)" "$samples"
}

echo "| models x versions | run | requests (per endpoint) | wall (s) | peak RSS |"
echo "|---|---|---|---:|---:|"
seeded=0
for n in "${sizes[@]}"; do
  bench_seed $((seeded + 1)) "$n" "$nv"
  seeded=$n
  # One manifest per model, committed in a git repository.
  repo="$work/repo-$n"
  mdir="$repo/m"
  mkdir -p "$mdir"
  bench_manifests "$n" "$nv" "$mdir"
  g() { git -C "$repo" -c user.name=bench -c user.email=bench@example.com "$@"; }
  g init -q -b main && g add -A && g commit -qm seed
  # Warm the server's workers up, then a modelsync warm-up run, then the
  # measured ones.
  for _ in $(seq 1 $((workers * 2))); do
    /usr/bin/time -f "bench-postgres: warm-up search took %e s" \
      curl -sf -o /dev/null "$url/api/2.0/mlflow/registered-models/search?max_results=1000" >&2
  done
  MODELSYNC_HTTP_TIMEOUT=300s "$modelsync" --registry "$url" -q plan "$mdir" >/dev/null
  echo "bench-postgres: $n: load before the plans: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  row "modelsync plan (full)" 0 "$modelsync" --registry "$url" plan --detailed-exitcode "$mdir"
  one=$(printf 'bench-%05d' $(( (n + 1) / 2 )))
  row "modelsync plan --model $one" 0 "$modelsync" --registry "$url" plan --detailed-exitcode --model "$one" "$mdir"
  sed -i "s/champion: v$nv/champion: v$((nv - 1))/" "$mdir/$one.yaml"
  row "modelsync plan --changed-since HEAD (one file edited)" 2 \
    "$modelsync" --registry "$url" plan --detailed-exitcode --changed-since HEAD "$mdir"
  g checkout -q -- "m/$one.yaml"
  # Where the time goes: per-request timings (-vv) of a full plan and of
  # the one-model plan.
  for args in "" "--model $one"; do
    # shellcheck disable=SC2086
    "$modelsync" --registry "$url" -vv plan $args "$mdir" 2>&1 >/dev/null | grep -E 'elapsed_ms' \
      | sed -E 's/^.*(endpoint[^ ]*).*(elapsed_ms[^ ]*).*$/  \1 \2/' | sort | uniq -c \
      | sed "s/^/bench-postgres: $n: plan $args: /" >&2 || true
  done
  before=$(requests); t0=$(now)
  bulk_reads
  t1=$(now); after=$(requests)
  printf '| %s x %s | bulk reads alone (curl) | %s | %.2f | |\n' "$n" "$nv" "$((after - before))" "$(echo "$t1 - $t0" | bc)"
  [ -z "${WATCH:-}" ] || watch_rss "$mdir" "$WATCH"
  [ -z "${SKIP_PYTHON:-}" ] || continue
  # MLflow's Python client, per model (interpreter start-up not counted).
  before=$(requests)
  secs=$(MLFLOW_TRACKING_URI="$url" "$bin/python" -W ignore - "$n" <<'PY'
import sys, time
from mlflow import MlflowClient
n = int(sys.argv[1])
c = MlflowClient()
t = time.perf_counter()
for i in range(1, n + 1):
    name = f"bench-{i:05d}"
    c.get_registered_model(name)
    c.search_model_versions(f"name='{name}'")
print(f"{time.perf_counter() - t:.2f}")
PY
)
  after=$(requests)
  printf '| %s x %s | MlflowClient per model | %s | %s | |\n' "$n" "$nv" "$((after - before))" "$secs"
done
