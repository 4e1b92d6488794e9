#!/usr/bin/env bash
# Plan figures on MLflow 3.17.2 with a PostgreSQL backend store: N models x 5
# versions (default N = 1000 and 10000), `modelsync plan` against MLflow's
# Python client (MlflowClient: get_registered_model + search_model_versions
# per model), reads and wall time. Prints a Markdown table.
#
# Usage: [VERSIONS=5] scripts/bench-postgres.sh [N...]
# Besides the two clients, the bulk reads modelsync makes are timed alone
# with curl (the registered-models/search pages one after another, beside
# the one model-versions/search page), for the plan-vs-bulk-reads ratio;
# modelsync's peak RSS is GNU time's %M. WATCH=K also runs the daemon for K
# back-to-back no-op reconciles (requests per reconcile, RSS first -> last).
# The registry is seeded with SQL (registered_models, model_versions,
# aliases, tags), not through the API: only reads are measured. Requests are
# counted in the server's access log, the same way for both clients.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
nv="${VERSIONS:-5}"

scripts/ensure-system-deps.sh
bin="$(scripts/ensure-mlflow.sh 3.17.2 servers)"
cargo build --release --locked --bin modelsync >&2
modelsync="${CARGO_TARGET_DIR:-$root/target}/release/modelsync"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

work="$(mktemp -d /tmp/modelsync-bench-pg.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 2
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
mkdir -p "$work/pg"
[ "$(id -u)" -ne 0 ] || chown postgres "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U mlflow --auth=trust -E UTF8 --locale=C --no-sync --no-instructions >/dev/null
pg_port="$(free_port)"
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pg_port" -k "$work/pg" \
  -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off >"$work/pg.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.2; done
"$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U mlflow mlflow
psql=("$pgbin/psql" -q -h 127.0.0.1 -p "$pg_port" -U mlflow -d mlflow -v ON_ERROR_STOP=1)

port="$(free_port)"
url="http://127.0.0.1:$port"
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$bin/mlflow" server \
  --backend-store-uri "postgresql+psycopg://mlflow@127.0.0.1:$pg_port/mlflow" \
  --default-artifact-root "$work/artifacts" --host 127.0.0.1 --port "$port" --workers 2 \
  >"$work/access.log" 2>"$work/server.log" &
pids+=($!)
start=$(date +%s)
until curl -sf "$url/health" >/dev/null; do
  sleep 0.5
  [ $(( $(date +%s) - start )) -lt 300 ] || { tail -20 "$work/server.log" >&2; exit 1; }
done
echo "bench-postgres: MLflow on PostgreSQL up after $(( $(date +%s) - start )) s" >&2

requests() { grep -c ' HTTP/1.1" ' "$work/access.log" || true; }
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

echo "| models x versions | tool | reads | wall time (s) | peak RSS |"
echo "|---|---|---:|---:|---:|"
seeded=0
for n in "${sizes[@]}"; do
  # Seed models seeded+1..n: versions 1-3 Archived, 4 Staging, 5 Production,
  # alias champion -> 5, and the ownership tag modelsync writes.
  "${psql[@]}" <<SQL
INSERT INTO registered_models (name, creation_time, last_updated_time, description)
  SELECT format('bench-%s', lpad(i::text, 5, '0')), 0, 0, ''
  FROM generate_series($((seeded + 1)), $n) i;
INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id,
                            current_stage, source, run_id, status, status_message, run_link, storage_location)
  SELECT format('bench-%s', lpad(i::text, 5, '0')), v, 0, 0, '', '',
         CASE v WHEN $nv THEN 'Production' WHEN $((nv - 1)) THEN 'Staging' ELSE 'Archived' END,
         format('s3://bench/%s/%s', i, v), '', 'READY', '', '', format('s3://bench/%s/%s', i, v)
  FROM generate_series($((seeded + 1)), $n) i, generate_series(1, $nv) v;
INSERT INTO registered_model_aliases (alias, version, name)
  SELECT 'champion', $nv, format('bench-%s', lpad(i::text, 5, '0'))
  FROM generate_series($((seeded + 1)), $n) i;
INSERT INTO registered_model_tags (key, value, name)
  SELECT 'modelsync.managed', '{"aliases":["champion"],"stages":["Staging","Production"]}',
         format('bench-%s', lpad(i::text, 5, '0'))
  FROM generate_series($((seeded + 1)), $n) i;
-- Bulk-loaded tables have no planner statistics until autovacuum gets to
-- them; without this the first search takes minutes (seen: 115 s).
ANALYZE;
SQL
  seeded=$n
  # Manifests for all n models, one file.
  mdir="$work/manifests-$n"
  mkdir -p "$mdir"
  "$bin/python" - "$n" "$mdir/models.yaml" "$nv" <<'PY'
import sys
n, path, nv = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
versions = "".join(f"    v{k}: {{version: {k}}}\n" for k in range(1, nv + 1))
with open(path, "w") as f:
    for i in range(1, n + 1):
        f.write(f"""---
apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: bench-{i:05d}
spec:
  versions:
{versions}  stages:
    Staging: v{nv - 1}
    Production: v{nv}
  aliases:
    champion: v{nv}
""")
PY
  # Warm both server workers up, then a modelsync warm-up run, then the
  # measured one.
  for _ in 1 2 3 4; do
    /usr/bin/time -f "bench-postgres: warm-up search took %e s" \
      curl -sf -o /dev/null "$url/api/2.0/mlflow/registered-models/search?max_results=1000" >&2
  done
  MODELSYNC_HTTP_TIMEOUT=300s "$modelsync" --registry "$url" -q plan "$mdir" >/dev/null
  before=$(requests); t0=$(now)
  /usr/bin/time -f %M -o "$work/rss" "$modelsync" --registry "$url" plan --detailed-exitcode "$mdir" >"$work/plan.txt" || {
    echo "bench-postgres: plan reported changes or failed:" >&2; head -20 "$work/plan.txt" >&2; exit 1; }
  t1=$(now); after=$(requests)
  printf '| %s x %s | modelsync plan | %s | %.2f | %s MiB |\n' "$n" "$nv" "$((after - before))" "$(echo "$t1 - $t0" | bc)" \
    "$(awk '{printf "%.1f", $1/1024}' "$work/rss")"
  # Where the time goes: one more plan with per-request timings (-vv).
  "$modelsync" --registry "$url" -vv plan "$mdir" 2>&1 >/dev/null | grep -E 'elapsed_ms' | sed -E 's/^.*(endpoint[^ ]*).*(elapsed_ms[^ ]*).*$/  \1 \2/' | sort | uniq -c | sed "s/^/bench-postgres: $n: /" >&2 || true
  before=$(requests); t0=$(now)
  bulk_reads
  t1=$(now); after=$(requests)
  printf '| %s x %s | bulk reads alone (curl) | %s | %.2f | |\n' "$n" "$nv" "$((after - before))" "$(echo "$t1 - $t0" | bc)"
  if [ -n "${WATCH:-}" ]; then
    # The daemon on the converged registry: WATCH no-op reconciles back to
    # back (--resync 1ms); requests per reconcile from the access log, RSS
    # from /proc after the first and the last.
    wport="$(free_port)"
    "$modelsync" watch "$mdir" --registry "$url" --listen "127.0.0.1:$wport" --resync 1ms -q &
    wpid=$!
    pids+=("$wpid")
    done_reconciles() { curl -s "http://127.0.0.1:$wport/metrics" | awk '/^modelsync_reconciles_total/ {s+=$2} END {print s+0}'; }
    until [ "$(done_reconciles)" -ge 1 ]; do sleep 0.2; done
    rss1=$(awk '/VmRSS/ {print $2}' "/proc/$wpid/status"); before=$(requests); t0=$(now); r0=$(done_reconciles)
    until [ "$(done_reconciles)" -ge "$WATCH" ]; do sleep 0.2; done
    r1=$(done_reconciles); t1=$(now); after=$(requests); rss2=$(awk '/VmRSS/ {print $2}' "/proc/$wpid/status")
    kill -TERM "$wpid"; wait "$wpid" || true
    printf '| %s x %s | daemon no-op reconcile (%s in a row) | %s per reconcile | %.2f per reconcile | RSS %.1f -> %.1f MiB |\n' \
      "$n" "$nv" "$((r1 - r0))" "$(echo "scale=1; ($after - $before) / ($r1 - $r0)" | bc)" \
      "$(echo "($t1 - $t0) / ($r1 - $r0)" | bc -l)" "$(echo "$rss1 / 1024" | bc -l)" "$(echo "$rss2 / 1024" | bc -l)"
  fi
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
