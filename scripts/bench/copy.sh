#!/usr/bin/env bash
# Benchmark: copy a model of SIZE_MB (default "50 500") between two local
# MLflow servers with proxied artifacts — modelsync apply (from:) vs
# mlflow-export-import's copy-model-version, when it installs from PyPI.
# Prints wall time and peak RSS (GNU time's "Maximum resident set size").
#
#   scripts/bench/copy.sh [SIZE_MB...]
#
# Needs the MLflow venv (scripts/ensure-mlflow.sh) and a release build
# (cargo build --release). Servers and files live in a temp dir, removed
# at the end. export-import goes into its own venv under .tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENVS=${MODELSYNC_VENV_DIR:-$ROOT/.tools}
PY=$VENVS/mlflow-3.17.2/bin
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/modelsync
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(50 500)
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
start() { # name -> prints url
  local name=$1 port; port=$(free_port); mkdir -p "$TMP/$name"
  setsid "$PY/mlflow" server --backend-store-uri "sqlite:///$TMP/$name/db" \
    --default-artifact-root mlflow-artifacts:/ --serve-artifacts \
    --artifacts-destination "$TMP/$name/artifacts" --host 127.0.0.1 --port "$port" \
    --workers 2 >"$TMP/$name/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.5; done
  echo "http://127.0.0.1:$port"
}
DEV=$(start dev); PROD=$(start prod)

EI=$VENVS/export-import
if [ ! -x "$EI/bin/python" ]; then
  python3 -m venv "$EI" && "$EI/bin/pip" install -q mlflow-export-import "mlflow==3.17.2" \
    || echo "mlflow-export-import did not install" >&2
fi
# mlflow-export-import 1.2.0 (the PyPI release) has no copy-model-version.
[ -x "$EI/bin/copy-model-version" ] || echo "mlflow-export-import: no copy-model-version in the PyPI release" >&2

for mb in "${SIZES[@]}"; do
  name="bench-$mb"
  MLFLOW_TRACKING_URI=$DEV "$PY/python" - "$name" "$mb" <<'PY'
import os, sys, mlflow, mlflow.pyfunc
from mlflow import MlflowClient
name, mb = sys.argv[1], int(sys.argv[2])
blob = f"/tmp/{name}.bin"
with open(blob, "wb") as f:
    for _ in range(mb):
        f.write(os.urandom(1 << 20))
class M(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input
mlflow.set_experiment(name)
with mlflow.start_run():
    mlflow.log_metric("accuracy", 0.95)
    info = mlflow.pyfunc.log_model(name="model", python_model=M(), artifacts={"blob": blob},
                                   registered_model_name=name)
MlflowClient().set_registered_model_alias(name, "champion", info.registered_model_version)
os.remove(blob)
PY
  wd=$TMP/wd-$mb; mkdir -p "$wd/m"
  printf '[registries.dev]\nuri = "%s"\n' "$DEV" >"$wd/m/modelsync.toml"
  cat >"$wd/m/model.yaml" <<YAML
apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: $name
spec:
  versions:
    released:
      from: {registry: dev, model: $name, alias: champion}
  aliases:
    champion: released
YAML
  (cd "$wd" && /usr/bin/time -f "modelsync ${mb}MB: wall %e s, peak RSS %M kB" \
     "$BIN" apply m --registry "$PROD" -q >/dev/null) 2>&1 | tail -1
  if [ -x "$EI/bin/copy-model-version" ]; then
    /usr/bin/time -f "export-import ${mb}MB: wall %e s, peak RSS %M kB" \
      "$EI/bin/copy-model-version" --src-model "$name" --src-version 1 \
      --dst-model "$name-ei" --src-mlflow-uri "$DEV" --dst-mlflow-uri "$PROD" \
      --dst-experiment-name "$name-ei" >"$TMP/ei-$mb.log" 2>&1 \
      || { echo "export-import ${mb}MB failed:"; tail -5 "$TMP/ei-$mb.log"; }
    tail -1 "$TMP/ei-$mb.log" | grep -q "wall" && tail -1 "$TMP/ei-$mb.log"
  fi
done
