#!/usr/bin/env bash
# Measures the status page and notifications of the daemon on a folder of M
# models (embedded registry): GET / latency (median and max of 50) and
# size, GET /models/NAME latency, RSS, and the first reconcile's duration
# with no --notify target vs. one that accepts connections and never
# answers (deliveries must not slow a reconcile).
#
#   scripts/bench-page.sh [MODELS=1000]
#
# Builds the release binary (into $CARGO_TARGET_DIR or target/).
set -euo pipefail
M=${1:-1000}
cd "$(dirname "$0")/.."
cargo build --release --quiet
WORK=$(mktemp -d)
cp "${CARGO_TARGET_DIR:-target}/release/modelsync" "$WORK/modelsync"
BIN=$WORK/modelsync
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/m"
for i in $(seq -w 1 "$M"); do
  cat > "$WORK/m/model$i.yaml" <<YAML
apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: bench-$i
spec:
  versions:
    v1: {source: "s3://bench/$i/1"}
    v2: {source: "s3://bench/$i/2"}
  stages: {Production: v2, Staging: v1}
  aliases: {champion: v2, challenger: v1}
YAML
done
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A receiver that accepts and never answers.
SINK=$(port)
python3 -c "
import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1',$SINK)); s.listen(64); c=[]
while True: c.append(s.accept()[0])
" & PIDS+=($!)

run() { # $1 = label, rest = extra flags
  local label=$1; shift
  local addr=127.0.0.1:$(port)
  rm -f "$WORK/reg.json"
  "$BIN" watch "$WORK/m" --registry "file:$WORK/reg.json" --listen "$addr" --resync 0 -q "$@" &
  local pid=$!; PIDS+=($pid)
  until curl -sf "http://$addr/status" | grep -q '"last_applied_revision":"sha256'; do sleep 0.2; done
  local secs
  secs=$(curl -s "http://$addr/metrics" | awk '/^modelsync_reconcile_duration_seconds_sum/ {print $2}')
  echo "$label: first reconcile (apply $M models) ${secs}s"
  if [ "$label" = "no notify" ]; then
    for _ in $(seq 50); do curl -s -o /dev/null -w '%{time_total}\n' "http://$addr/"; done | sort -n |
      awk '{a[NR]=$1} END {printf "GET /: median %.1f ms, max %.1f ms\n", a[int(NR/2)]*1000, a[NR]*1000}'
    echo "GET / size: $(curl -s "http://$addr/" | wc -c) bytes"
    for _ in $(seq 50); do curl -s -o /dev/null -w '%{time_total}\n' "http://$addr/models/bench-$(printf %0${#M}d 1)"; done | sort -n |
      awk '{a[NR]=$1} END {printf "GET /models/NAME: median %.1f ms\n", a[int(NR/2)]*1000}'
    echo "RSS: $(awk '/VmRSS/ {print $2" kB"}' /proc/$pid/status)"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
run "no notify"
run "notify to a receiver that never answers" --notify "http://127.0.0.1:$SINK/hook"
