#!/usr/bin/env bash
# Measures the daemon: RSS idle and after N reconciles of a folder of M
# models (embedded registry), idle CPU, and git push -> applied latency.
#
#   scripts/bench-watch.sh [RECONCILES=1000] [MODELS=200]
#
# Builds the release binary (into $CARGO_TARGET_DIR or target/).
set -euo pipefail
N=${1:-1000}
M=${2:-200}
cd "$(dirname "$0")/.."
cargo build --release --quiet
WORK=$(mktemp -d)
# A private copy: a shared target dir may be rebuilt by someone else meanwhile.
cp "${CARGO_TARGET_DIR:-target}/release/modelsync" "$WORK/modelsync"
BIN=$WORK/modelsync
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/m"
for i in $(seq -w 1 "$M"); do
  cat > "$WORK/m/model$i.yaml" <<YAML
apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: bench-$i
spec:
  description: bench model $i
  versions:
    v1: {source: "s3://bench/$i/1"}
    v2: {source: "s3://bench/$i/2"}
  stages: {Production: v2, Staging: v1}
  aliases: {champion: v2, challenger: v1}
YAML
done

rss() { awk '/VmRSS/ {print $2" kB"}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
reconciles() { curl -s "http://$ADDR/metrics" | awk '/^modelsync_reconciles_total/ {s+=$2} END {print s+0}'; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ADDR=127.0.0.1:$(port)
# 1. Folder: first reconcile, idle, then N reconciles via a 1 ms resync.
"$BIN" watch "$WORK/m" --registry "file:$WORK/reg.json" --listen "$ADDR" --resync 0 -q &
PID=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ]; do sleep 0.1; done
echo "first reconcile of $M models: done; RSS $(rss $PID)"
T0=$(cpu_ticks $PID); sleep 10; T1=$(cpu_ticks $PID)
echo "idle 10 s: CPU ticks used $((T1 - T0)) (1 tick = 10 ms); RSS $(rss $PID)"
kill -TERM $PID; wait $PID || true

"$BIN" watch "$WORK/m" --registry "file:$WORK/reg.json" --listen "$ADDR" --resync 1ms -q &
PID=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ]; do sleep 0.1; done
START=$(date +%s.%N)
HALF=0
while :; do
  R=$(reconciles)
  if [ "$HALF" = 0 ] && [ "$R" -ge $((N / 2)) ]; then echo "after $R reconciles: RSS $(rss $PID)"; HALF=1; fi
  [ "$R" -ge "$N" ] && break
  sleep 0.2
done
END=$(date +%s.%N)
echo "after $R reconciles: RSS $(rss $PID); $(echo "($END - $START) / $R * 1000" | bc -l | cut -c1-6) ms per no-op reconcile of $M models"
kill -TERM $PID; wait $PID || true

# 2. Git: push -> applied with --interval 1s, and via the webhook.
git init -q --bare -b main "$WORK/remote.git"
git init -q -b main "$WORK/clone"
cd "$WORK/clone" || exit 1
git remote add origin "$WORK/remote.git"
cp "$WORK/m/model001.yaml" .
git add -A && git -c user.name=b -c user.email=b@b commit -qm one && git push -q origin main
ADDR=127.0.0.1:$(port)
"$BIN" watch --git "file://$WORK/remote.git" --interval 1s --cache-dir "$WORK/cache" \
  --registry "file:$WORK/reg2.json" --listen "$ADDR" -q &
PID=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ]; do sleep 0.1; done
for how in interval webhook interval webhook interval webhook; do
  sed -i "s/description: .*/description: $how $RANDOM/" model001.yaml
  git -c user.name=b -c user.email=b@b commit -qam change
  START=$(date +%s.%N)
  git push -q origin main
  [ "$how" = webhook ] && curl -s -o /dev/null -X POST "http://$ADDR/hooks/git"
  SHA=$(git rev-parse HEAD)
  until curl -s "http://$ADDR/status" | grep -q "\"last_applied_revision\":\"$SHA\""; do sleep 0.01; done
  END=$(date +%s.%N)
  echo "push -> applied ($how): $(echo "($END - $START) * 1000" | bc -l | cut -c1-6) ms"
done
