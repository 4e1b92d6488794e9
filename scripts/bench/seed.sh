# The PostgreSQL-backed registry the bench scripts share (sourced, not run):
# a throw-away PostgreSQL, the SQL seeding of N models x NV versions (only
# reads are measured: the rows are written with SQL, not through the API),
# the matching manifests, and per-endpoint request counts from an MLflow
# access log. Used by scripts/bench-postgres.sh and scripts/bench-events.sh.
# shellcheck shell=bash

# bench_pg_start WORK: PostgreSQL in WORK/pg (fsync off), a database
# `mlflow` owned by `mlflow`; sets $pg_port and the array $psql, appends the
# server's pid to the caller's array $pids.
bench_pg_start() {
  local work=$1 pgbin as_pg=()
  pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
  mkdir -p "$work/pg"
  [ "$(id -u)" -ne 0 ] || chown postgres "$work/pg"
  "${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U mlflow --auth=trust -E UTF8 --locale=C \
    --no-sync --no-instructions >/dev/null
  pg_port="$(free_port)"
  "${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pg_port" -k "$work/pg" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off >"$work/pg.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.2; done
  "$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U mlflow mlflow
  psql=("$pgbin/psql" -q -h 127.0.0.1 -p "$pg_port" -U mlflow -d mlflow -v ON_ERROR_STOP=1)
}

# bench_seed FROM TO NV: models bench-FROM..bench-TO (5 digits), each with
# versions 1..NV (NV Production, NV-1 Staging, the rest Archived), alias
# champion -> NV, and the ownership tag modelsync writes.
bench_seed() {
  local from=$1 to=$2 nv=$3
  "${psql[@]}" <<SQL
INSERT INTO registered_models (name, creation_time, last_updated_time, description)
  SELECT format('bench-%s', lpad(i::text, 5, '0')), 0, 0, ''
  FROM generate_series($from, $to) i;
INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id,
                            current_stage, source, run_id, status, status_message, run_link, storage_location)
  SELECT format('bench-%s', lpad(i::text, 5, '0')), v, 0, 0, '', '',
         CASE v WHEN $nv THEN 'Production' WHEN $((nv - 1)) THEN 'Staging' ELSE 'Archived' END,
         format('s3://bench/%s/%s', i, v), '', 'READY', '', '', format('s3://bench/%s/%s', i, v)
  FROM generate_series($from, $to) i, generate_series(1, $nv) v;
INSERT INTO registered_model_aliases (alias, version, name)
  SELECT 'champion', $nv, format('bench-%s', lpad(i::text, 5, '0'))
  FROM generate_series($from, $to) i;
INSERT INTO registered_model_tags (key, value, name)
  SELECT 'modelsync.managed', '{"aliases":["champion"],"stages":["Staging","Production"]}',
         format('bench-%s', lpad(i::text, 5, '0'))
  FROM generate_series($from, $to) i;
-- Bulk-loaded tables have no planner statistics until autovacuum gets to
-- them; without this the first search takes minutes (seen: 115 s).
ANALYZE;
SQL
}

# bench_manifests N NV DIR: the manifests of models 1..N as bench_seed
# wrote them (converged), one file per model (DIR/bench-00001.yaml, ...).
bench_manifests() {
  python3 - "$1" "$3" "$2" <<'PY'
import sys
n, folder, nv = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
versions = "".join(f"    v{k}: {{version: {k}}}\n" for k in range(1, nv + 1))
for i in range(1, n + 1):
    with open(f"{folder}/bench-{i:05d}.yaml", "w") as f:
        f.write(f"""apiVersion: modelsync/v1
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
}

# bench_requests LOG: the requests in an MLflow (uvicorn) access log so far.
bench_requests() { grep -c ' HTTP/1.1" ' "$1" || true; }

# bench_endpoints LOG FROM TO: the requests FROM+1..TO of LOG, per endpoint,
# on one line ("3 GET registered-models/get, 1 GET model-versions/search").
bench_endpoints() {
  grep ' HTTP/1.1" ' "$1" | sed -n "$(($2 + 1)),$3p" \
    | sed -E 's/.*"([A-Z]+) ([^? ]*).*/\1 \2/; s#/api/2.0/mlflow/##' | sort | uniq -c \
    | awk '{printf "%s%s %s %s", (NR > 1 ? ", " : ""), $1, $2, $3} END {print ""}'
}
