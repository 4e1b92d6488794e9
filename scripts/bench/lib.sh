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

# start_postgres DIR : a private PostgreSQL cluster in DIR/pg (initdb, trust
# auth on loopback, no fsync: a benchmark's throwaway store) on a free port,
# with database `mlflow` and pg_stat_statements loaded, so what each SQL
# statement costs the database can be read (`pg_statements`). Sets pg_bin,
# pg_port, pg_uri (the backend-store URI MLflow takes) and psql (an array).
# Stop it with stop_postgres.
start_postgres() {
  local dir=$1 i
  pg_dir="$dir/pg"
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  pg_as=()
  if [ "$(id -u)" -eq 0 ]; then pg_as=(runuser -u postgres --); fi
  chmod 755 "$dir"
  mkdir -p "$pg_dir"
  [ "$(id -u)" -ne 0 ] || chown postgres "$pg_dir"
  "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U mlflow --auth=trust -E UTF8 --locale=C \
    --no-sync --no-instructions >/dev/null
  pg_port="$(free_port)"
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/pg.log" -w -t 60 start -o \
    "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" >/dev/null
  for ((i = 0; i < 100; i++)); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.2; done
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U mlflow mlflow
  psql=("$pg_bin/psql" -q -X -h 127.0.0.1 -p "$pg_port" -U mlflow -d mlflow -v ON_ERROR_STOP=1)
  "${psql[@]}" -c 'CREATE EXTENSION pg_stat_statements' >/dev/null
  pg_uri="postgresql+psycopg://mlflow@127.0.0.1:$pg_port/mlflow"
}

# stop_postgres : stops the cluster start_postgres started (if any).
stop_postgres() {
  [ -n "${pg_dir:-}" ] && [ -f "$pg_dir/data/postmaster.pid" ] || return 0
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# pg_statements : the database's time since the last call (pg_stat_statements,
# then reset): one line `db_ms=… calls=…`, then the costliest statements
# (total ms, calls, mean ms, the statement's first 90 characters).
pg_statements() {
  "${psql[@]}" -At -F ' ' -c "SELECT 'db_ms=' || round(sum(total_exec_time)::numeric, 1) || ' calls=' || sum(calls)
      FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'"
  "${psql[@]}" -At -F ' | ' -c "SELECT round(total_exec_time::numeric, 1), calls, round(mean_exec_time::numeric, 3),
      left(regexp_replace(query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements
      WHERE query NOT ILIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 12"
  "${psql[@]}" -c 'SELECT pg_stat_statements_reset()' >/dev/null
}
