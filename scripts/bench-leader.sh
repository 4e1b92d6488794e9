#!/usr/bin/env bash
# Leader-election figures (issue 10), all on loopback, with --election-ttl 3s:
# - failover time after kill -9 and after SIGSTOP of the leader of two
#   replicas: from the signal until the other replica's /status says
#   "leader" (RUNS runs each, median, min and max), for etcd (a 3-member
#   cluster from Debian's etcd-server) and PostgreSQL (a private cluster);
# - the idle cost of a standby over 60 s (--election-ttl 15s, the default):
#   RSS, CPU ticks, requests to MLflow (modelsync_registry_requests_total)
#   and to the engine (modelsync_leader_election_requests_total);
# - the applier lease's heartbeat during a 1,000-model apply (1 version
#   each, default TTL 30 s): renewals (debug log) and lease requests in
#   MLflow's access log.
#
# Usage: scripts/bench-leader.sh [RUNS=5] [SECTIONS=failover,idle,heartbeat]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/bench/lib.sh
. scripts/bench/lib.sh
RUNS=${1:-5}
SECTIONS=${2:-failover,idle,heartbeat}
want() { [[ ",$SECTIONS," == *",$1,"* ]]; }
scripts/ensure-system-deps.sh
venv="$(scripts/ensure-mlflow.sh 3.17.2)"
modelsync="$(bench_binary)"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

work="$(mktemp -d /tmp/modelsync-bench-leader.XXXXXX)"
chmod 755 "$work"
cp "$modelsync" "$work/modelsync"
modelsync="$work/modelsync"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; done
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
log() { echo "bench-leader: $*" >&2; }

# MLflow (sqlite), its access log in $work/access.log.
mlport="$(free_port)"
mlflow="http://127.0.0.1:$mlport"
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$venv/mlflow" server \
  --backend-store-uri "sqlite:///$work/mlflow.db" --default-artifact-root "$work/artifacts" \
  --host 127.0.0.1 --port "$mlport" --workers 2 >"$work/access.log" 2>"$work/mlflow.log" &
pids+=($!)
until curl -sf "$mlflow/health" >/dev/null; do sleep 0.5; done
log "MLflow up"

# etcd: three members.
peers=() clients=() initial=()
for i in 0 1 2; do
  clients+=("$(free_port)"); peers+=("$(free_port)")
  initial+=("m$i=http://127.0.0.1:${peers[$i]}")
done
for i in 0 1 2; do
  /usr/bin/etcd --name "m$i" --data-dir "$work/etcd-m$i" \
    --listen-client-urls "http://127.0.0.1:${clients[$i]}" --advertise-client-urls "http://127.0.0.1:${clients[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${peers[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${peers[$i]}" \
    --initial-cluster "$(IFS=,; echo "${initial[*]}")" --initial-cluster-state new \
    --heartbeat-interval 100 --election-timeout 1000 --logger zap --log-level warn \
    >"$work/etcd-m$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  until curl -sf "http://127.0.0.1:${clients[$i]}/health" | grep -q '"health":"true"'; do sleep 0.2; done
done
etcd_uri="etcd://127.0.0.1:${clients[0]},127.0.0.1:${clients[1]},127.0.0.1:${clients[2]}"
log "etcd up: $etcd_uri"

# PostgreSQL: a private cluster.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
mkdir -p "$work/pg"
[ "$(id -u)" -ne 0 ] || chown postgres "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U mlflow --auth=trust -E UTF8 --locale=C --no-sync --no-instructions >/dev/null
pg_port="$(free_port)"
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pg_port" -k "$work/pg" \
  -c listen_addresses=127.0.0.1 -c fsync=off >"$work/pg.log" 2>&1 &
pids+=($!)
until "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; do sleep 0.2; done
pg_uri="postgresql://mlflow@127.0.0.1:$pg_port/postgres"
log "PostgreSQL up: $pg_uri"

mkdir -p "$work/m"
cat >"$work/m/bench-leader.yaml" <<YAML
apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: bench-leader
spec:
  description: leader bench
  versions:
    a: {source: "s3://bench/leader/a"}
  stages: {Production: a}
YAML

# replica URI NAME TTL -> "PID ADDR"
replica() {
  local addr
  addr="127.0.0.1:$(free_port)"
  MODELSYNC_LEASE_TTL=3s MODELSYNC_LEASE_MODEL=bench-leader-lease "$modelsync" --registry "$mlflow" -q \
    watch "$work/m" --listen "$addr" --resync 0 \
    --leader-election "$1" --leader-election-name "$2" --election-ttl "$3" >/dev/null 2>>"$work/replicas.log" &
  echo "$! $addr"
}
# The replicas run in a command substitution's subshell: remember them here.
track() { pids+=("${1% *}"); }
role() { curl -s --max-time 1 "http://$1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("role",""))' 2>/dev/null || true; }
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
wait_role() { # ADDR ROLE -> waits
  until [ "$(role "$1")" = "$2" ]; do sleep 0.01; done
}

# failover ENGINE_URI SIGNAL -> seconds
failover() {
  local name="bench-$RANDOM$RANDOM" a b pa aa pb ab leader standby t0 t1
  a=$(replica "$1" "$name" 3s); track "$a"; pa=${a% *}; aa=${a#* }
  sleep 0.5
  b=$(replica "$1" "$name" 3s); track "$b"; pb=${b% *}; ab=${b#* }
  until [ "$(role "$aa")" = leader ] || [ "$(role "$ab")" = leader ]; do sleep 0.05; done
  if [ "$(role "$aa")" = leader ]; then leader=$pa; standby=$ab; else leader=$pb; standby=$aa; fi
  sleep 1.5
  t0=$(now)
  kill "-$2" "$leader"
  wait_role "$standby" leader
  t1=$(now)
  kill -CONT "$leader" 2>/dev/null || true
  kill -KILL "$pa" "$pb" 2>/dev/null || true
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f\n", b-a}'
}

if want failover; then
echo "### Failover, --election-ttl 3s, two replicas ($RUNS runs each)"
echo
echo "| engine | leader gets | median | min | max |"
echo "|---|---|---:|---:|---:|"
for engine in etcd postgresql; do
  uri=$etcd_uri; [ "$engine" = postgresql ] && uri=$pg_uri
  for sig in KILL STOP; do
    times=()
    for _ in $(seq 1 "$RUNS"); do times+=("$(failover "$uri" "$sig")"); done
    log "$engine $sig: ${times[*]}"
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    echo "| $engine | $( [ "$sig" = KILL ] && echo 'kill -9' || echo SIGSTOP ) | $(printf '%s\n' "${times[@]}" | median) s | $(echo "$sorted" | head -1) s | $(echo "$sorted" | tail -1) s |"
  done
done
fi

if want idle; then
echo
echo "### Idle standby, --election-ttl 15s (default), 60 s"
echo
echo "| engine | RSS | CPU ticks/min (10 ms each) | MLflow requests/min | engine requests/min |"
echo "|---|---:|---:|---:|---:|"
for engine in etcd postgresql; do
  uri=$etcd_uri; [ "$engine" = postgresql ] && uri=$pg_uri
  name="bench-idle-$RANDOM"
  a=$(replica "$uri" "$name" 15s); track "$a"; pa=${a% *}; aa=${a#* }
  until [ "$(role "$aa")" = leader ]; do sleep 0.05; done
  b=$(replica "$uri" "$name" 15s); track "$b"; pb=${b% *}; ab=${b#* }
  until [ "$(role "$ab")" = standby ]; do sleep 0.05; done
  sleep 5
  c0=$(awk '{print $14+$15}' "/proc/$pb/stat"); m0=$(metric "$ab" modelsync_registry_requests_total); e0=$(metric "$ab" modelsync_leader_election_requests_total)
  sleep 60
  c1=$(awk '{print $14+$15}' "/proc/$pb/stat"); m1=$(metric "$ab" modelsync_registry_requests_total); e1=$(metric "$ab" modelsync_leader_election_requests_total)
  rss=$(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$pb/status")
  echo "| $engine | $rss | $((c1 - c0)) | $((m1 - m0)) | $((e1 - e0)) |"
  kill -TERM "$pa" "$pb"
  sleep 1
done
fi

want heartbeat || exit 0
echo
echo "### Applier-lease heartbeat during a 1,000-model apply (1 version each, TTL 30 s)"
echo
mkdir -p "$work/big"
python3 - "$work/big" <<'PY'
import sys
for i in range(1000):
    with open(f"{sys.argv[1]}/m{i:04}.yaml", "w") as f:
        f.write(f"""apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: bench-big-{i:04}
spec:
  versions:
    a: {{source: "s3://bench/big/{i}/a"}}
  stages: {{Production: a}}
""")
PY
from=$(wc -l <"$work/access.log")
t0=$(now)
MODELSYNC_LEASE_MODEL=bench-big-lease RUST_LOG=modelsync=debug "$modelsync" --registry "$mlflow" --log-format json \
  apply "$work/big" >/dev/null 2>"$work/big.log"
t1=$(now)
renewals=$(grep -c '"lease renewed"' "$work/big.log" || true)
lease_gets=$(tail -n +"$((from + 1))" "$work/access.log" | grep -c 'bench-big-lease' || true)
total=$(tail -n +"$((from + 1))" "$work/access.log" | grep -c ' HTTP/1.1" ' || true)
echo "| apply wall | requests in all | lease renewals | lease requests (reads in the access log + 1 set-tag per renewal, + take and release) |"
echo "|---:|---:|---:|---:|"
echo "| $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f s", b-a}') | $total | $renewals | $((lease_gets + renewals)) |"
