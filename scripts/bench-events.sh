#!/usr/bin/env bash
# The event-driven daemon (issue 23, benchmark rows b and c) on MLflow 3.17.2
# with a PostgreSQL backend store and 4 workers, seeded as
# scripts/bench-postgres.sh seeds (SQL, not the API): N models x 10 versions
# (default N = 1000 and 10000), one manifest file per model.
#
#   (b) an alias moved by hand (champion -> version 1, through the REST API):
#       time until the daemon has moved it back, polled every 50 ms —
#       with the daemon registered for MLflow's webhooks (--resync 0), and
#       with the resync alone (--resync $RESYNC, default 10s);
#   (c) a git push changing one model's manifest (a local bare repository,
#       --interval $INTERVAL, default 5s): push -> /status shows the commit
#       applied.
# Each is run $TRIALS times (default 5) on a different model; the rows give
# the median and the worst, and the server requests the daemon made per
# event (access-log lines during the trials, the poller's own removed).
# Prints Markdown table rows; progress goes to stderr.
#
# Usage: [TRIALS=5] [RESYNC=10s] [INTERVAL=5s] scripts/bench-events.sh [N...]
# Meaningful only on an otherwise idle machine (`uptime` load below 1).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=bench/lib.sh
source scripts/bench/lib.sh
# shellcheck source=bench/seed.sh
source scripts/bench/seed.sh
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
nv=10
trials="${TRIALS:-5}"
resync="${RESYNC:-10s}"
interval="${INTERVAL:-5s}"
secret="bench-events-webhook-secret"

scripts/ensure-system-deps.sh
bin="$(scripts/ensure-mlflow.sh 3.17.2 servers)"
modelsync="$(bench_binary)"

work="$(mktemp -d /tmp/modelsync-bench-events.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 2
  rm -rf "$work"
}
trap cleanup EXIT

bench_pg_start "$work"

# Webhooks to the daemon on plain-HTTP loopback, one key for the 4 workers'
# secrets, a new webhook used within a second (docs/mlflow.md).
port="$(free_port)"
url="http://127.0.0.1:$port"
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true \
  MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https MLFLOW_WEBHOOK_CACHE_TTL=1 \
  MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY="Tt39gr868sDXUZkhSRPMMvo9Xi0TRQ3NROySYMkj2Fw=" \
  "$bin/mlflow" server \
  --backend-store-uri "postgresql+psycopg://mlflow@127.0.0.1:$pg_port/mlflow" \
  --default-artifact-root "$work/artifacts" --host 127.0.0.1 --port "$port" --workers 4 \
  >"$work/access.log" 2>"$work/server.log" &
pids+=($!)
start=$(date +%s)
until curl -sf "$url/health" >/dev/null; do
  sleep 0.5
  [ $(( $(date +%s) - start )) -lt 300 ] || { tail -20 "$work/server.log" >&2; exit 1; }
done
echo "bench-events: MLflow on PostgreSQL (4 workers) up after $(( $(date +%s) - start )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

requests() { bench_requests "$work/access.log"; }
# endpoints FROM TO LABEL: the requests FROM+1..TO by endpoint, on stderr.
endpoints() {
  grep ' HTTP/1.1" ' "$work/access.log" | sed -n "$(($1 + 1)),$2p" \
    | sed -E 's/.*"([A-Z]+) ([^? ]*).*/\1 \2/; s#/api/2.0/mlflow/##' | sort | uniq -c \
    | sed "s/^/bench-events: $3: /" >&2
}
now() { date +%s.%N; }
name_of() { printf 'bench-%05d' "$1"; }

# The version behind NAME@champion.
champion() {
  curl -sfG "$url/api/2.0/mlflow/registered-models/alias" --data-urlencode "name=$1" \
    --data-urlencode alias=champion | "$bin/python" -c 'import sys,json; print(json.load(sys.stdin)["model_version"]["version"])'
}

move_by_hand() {
  curl -sf -o /dev/null -X POST "$url/api/2.0/mlflow/registered-models/alias" \
    -H 'Content-Type: application/json' -d "{\"name\": \"$1\", \"alias\": \"champion\", \"version\": \"$2\"}"
}

# reconciles ADDR: modelsync_reconciles_total, every outcome.
reconciles() { curl -s "http://$1/metrics" | awk '/^modelsync_reconciles_total/ {s+=$2} END {print s+0}'; }

# Sets $polls to the champion reads made, waits (at most 600 s) until
# NAME@champion is VERSION again.
polls=0
wait_champion() {
  local deadline=$(( $(date +%s) + 600 ))
  until [ "$(champion "$1")" = "$2" ]; do
    polls=$((polls + 1))
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bench-events: $1 not healed in 600 s" >&2; exit 1; }
    sleep 0.05
  done
  polls=$((polls + 1))
}

# stats: "median worst" (seconds) of the numbers on stdin.
stats() { sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f | %.2f", m, a[NR]}'; }

# heal_trials LABEL N ADDR: TRIALS hand moves on models 1.., each timed to
# healed; prints the row.
heal_trials() {
  local label=$1 n=$2 addr=$3 times="" k name t0 t1 before after
  polls=0
  before=$(requests)
  for k in $(seq 1 "$trials"); do
    name=$(name_of $(( (k * 997) % n + 1 )))
    move_by_hand "$name" 1
    t0=$(now)
    wait_champion "$name" "$nv"
    t1=$(now)
    times+="$(echo "$t1 - $t0" | bc)"$'\n'
  done
  after=$(requests)
  endpoints "$before" "$after" "$n $label (polls included)"
  printf '| %s x %s | %s | %s | %s requests per heal | reconciles: %s |\n' "$n" "$nv" "$label" \
    "$(printf '%s' "$times" | stats)" \
    "$(echo "scale=1; ($after - $before - $polls - $trials) / $trials" | bc)" "$(reconciles "$addr")"
}

# start_daemon ADDR ARGS...: a daemon on ADDR; waits for its first reconcile.
dpid=""
start_daemon() {
  local addr=$1
  shift
  MS_HOOK_SECRET="$secret" MODELSYNC_HTTP_TIMEOUT=300s "$modelsync" --registry "$url" -q watch \
    --listen "$addr" "$@" 2>>"$work/daemon.log" &
  dpid=$!
  pids+=("$dpid")
  local deadline=$(( $(date +%s) + 900 ))
  until [ "$(reconciles "$addr")" -ge 1 ]; do
    kill -0 "$dpid" || { tail -20 "$work/daemon.log" >&2; exit 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bench-events: no first reconcile in 900 s" >&2; exit 1; }
    sleep 0.2
  done
}

stop_daemon() { kill -TERM "$dpid"; wait "$dpid" || true; }

echo "| models x versions | event | median (s) | worst (s) | requests | notes |"
echo "|---|---|---:|---:|---:|---|"
seeded=0
for n in "${sizes[@]}"; do
  bench_seed $((seeded + 1)) "$n" "$nv"
  seeded=$n
  # One manifest per model, in a git repository (a bare remote and a clone).
  repo="$work/repo-$n"
  rm -rf "$repo"
  git init -q --bare -b main "$repo/remote.git"
  git init -q -b main "$repo/clone"
  mkdir -p "$repo/clone/m"
  bench_manifests "$n" "$nv" "$repo/clone/m"
  g() { git -C "$repo/clone" -c user.name=bench -c user.email=bench@example.com "$@"; }
  g add -A && g commit -qm seed && g remote add origin "$repo/remote.git" && g push -q origin main
  MODELSYNC_HTTP_TIMEOUT=300s "$modelsync" --registry "$url" -q plan "$repo/clone/m" --detailed-exitcode >/dev/null || {
    echo "bench-events: the seeded registry does not match the manifests" >&2; exit 1; }

  # (b) MLflow's webhooks, resync off.
  wport="$(free_port)"
  addr="127.0.0.1:$wport"
  start_daemon "$addr" "$repo/clone/m" --resync 0 --mlflow-webhook-secret-env MS_HOOK_SECRET \
    --register-mlflow-webhook "http://$addr/hooks/mlflow" --mlflow-webhook-name "bench-events-$n"
  sleep 2 # the server's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1)
  heal_trials "hand-moved alias, MLflow webhook" "$n" "$addr"
  stop_daemon
  # (b) the resync alone.
  wport="$(free_port)"
  addr="127.0.0.1:$wport"
  start_daemon "$addr" "$repo/clone/m" --resync "$resync"
  heal_trials "hand-moved alias, resync $resync only" "$n" "$addr"
  stop_daemon

  # (c) a push changing one model.
  wport="$(free_port)"
  addr="127.0.0.1:$wport"
  start_daemon "$addr" --git "file://$repo/remote.git" --path m --interval "$interval" --resync 0 \
    --cache-dir "$repo/cache"
  times=""
  before=$(requests)
  for k in $(seq 1 "$trials"); do
    name=$(name_of $(( (k * 991) % n + 1 )))
    sed -i "s/champion: v$nv/champion: v$((nv - 1))/" "$repo/clone/m/$name.yaml"
    g commit -qam "move $name"
    sha=$(g rev-parse HEAD)
    t0=$(now)
    g push -q origin main
    deadline=$(( $(date +%s) + 600 ))
    until curl -s "http://$addr/status" | grep -q "\"last_applied_revision\":\"$sha\""; do
      [ "$(date +%s)" -lt "$deadline" ] || { echo "bench-events: $sha not applied in 600 s" >&2; exit 1; }
      sleep 0.02
    done
    t1=$(now)
    [ "$(champion "$name")" = "$((nv - 1))" ] || { echo "bench-events: $name not moved" >&2; exit 1; }
    times+="$(echo "$t1 - $t0" | bc)"$'\n'
  done
  after=$(requests)
  endpoints "$before" "$after" "$n push"
  printf '| %s x %s | git push changing one model, --interval %s | %s | %s requests per push | target: interval + 1 s |\n' \
    "$n" "$nv" "$interval" "$(printf '%s' "$times" | stats)" \
    "$(echo "scale=1; ($after - $before - $trials) / $trials" | bc)"
  stop_daemon
  # Back to the seeded state for the next size.
  for k in $(seq 1 "$trials"); do move_by_hand "$(name_of $(( (k * 991) % n + 1 )))" "$nv"; done
done
echo "bench-events: load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
