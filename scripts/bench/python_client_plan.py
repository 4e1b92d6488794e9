#!/usr/bin/env python3
"""Baseline for the benchmarks: the reconciliation modelsync's `plan` does,
written with MLflow's Python client the way teams write it today.

For every RegisteredModel manifest: `MlflowClient.get_registered_model(name)`
plus `search_model_versions(f"name='{name}'")`, then the same comparison the
planner makes -- the model exists, description and tags, each declared version
found by `source` (and `runId`) or by number, every declared stage held by the
declared version and by no other, every declared alias pointing at it, version
descriptions/tags. No writes. Prints a one-line summary of the changes it would
make, and the time spent in `import mlflow` and in the reconciliation loop (the
benchmark script measures the whole process around it).

Usage: python_client_plan.py --tracking-uri URL MANIFEST_DIR...
Run it with the python of the MLflow virtualenv (it needs mlflow and PyYAML).
"""
import argparse
import os
import sys
import time

T0 = time.perf_counter()
import yaml  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

T_IMPORT = time.perf_counter() - T0
STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}


def manifests(paths):
    """Yields the spec of every RegisteredModel document under paths."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith((".yaml", ".yml"))]
        else:
            files.append(p)
    for path in sorted(files):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "RegisteredModel":
                    yield doc["metadata"]["name"], doc.get("spec") or {}


def plan_model(client, name, spec):
    """The actions needed for one model, as (kind, detail) tuples."""
    actions = []
    try:
        model = client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        model = None
    if model is None:
        actions.append(("create_model", name))
        live_versions, aliases, desc, tags = [], {}, None, {}
    else:
        live_versions = client.search_model_versions(f"name='{name}'")
        aliases = {a: int(v) for a, v in (model.aliases or {}).items()}
        desc, tags = model.description, model.tags or {}

    if "description" in spec and (desc or "") != spec["description"]:
        actions.append(("update_description", name))
    for k, v in (spec.get("tags") or {}).items():
        if tags.get(k) != str(v):
            actions.append(("set_model_tag", k))

    by_number = {int(v.version): v for v in live_versions}
    holder = {}  # handle -> live version number, or None for a version to register
    for handle, decl in (spec.get("versions") or {}).items():
        if "version" in decl:
            n = int(decl["version"])
            if n not in by_number:
                actions.append(("missing_version", f"{handle}=v{n}"))
            holder[handle] = n
            continue
        match = [
            v for v in live_versions
            if v.source == decl["source"] and (decl.get("runId") is None or v.run_id == decl["runId"])
        ]
        if match:
            holder[handle] = min(int(v.version) for v in match)
        else:
            actions.append(("register_version", decl["source"]))
            holder[handle] = None
        live = by_number.get(holder[handle])
        if live is not None:
            if "description" in decl and (live.description or "") != decl["description"]:
                actions.append(("update_version_description", handle))
            for k, v in (decl.get("tags") or {}).items():
                if (live.tags or {}).get(k) != str(v):
                    actions.append(("set_version_tag", f"{handle}.{k}"))

    def resolve(ref):
        if isinstance(ref, int):
            return ref
        return holder.get(ref)

    for stage, ref in (spec.get("stages") or {}).items():
        stage = STAGES[stage.lower()]
        want = resolve(ref)
        live = by_number.get(want)
        if live is None or live.current_stage != stage:
            actions.append(("transition_stage", f"{stage}"))
        for v in live_versions:
            if v.current_stage == stage and int(v.version) != want and stage not in ("None", "Archived"):
                actions.append(("archive", f"v{v.version} from {stage}"))
    for alias, ref in (spec.get("aliases") or {}).items():
        want = resolve(ref)
        if want is None or aliases.get(alias) != want:
            actions.append(("set_alias", alias))
    return actions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("paths", nargs="+")
    a = p.parse_args()
    client = MlflowClient(tracking_uri=a.tracking_uri, registry_uri=a.tracking_uri)
    t = time.perf_counter()
    models = changed = 0
    kinds = {}
    for name, spec in manifests(a.paths):
        models += 1
        actions = plan_model(client, name, spec)
        changed += bool(actions)
        for kind, _ in actions:
            kinds[kind] = kinds.get(kind, 0) + 1
    loop = time.perf_counter() - t
    summary = ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())) or "no changes"
    print(f"models={models} changed_models={changed} actions: {summary}")
    print(f"import_s={T_IMPORT:.3f} loop_s={loop:.3f}", file=sys.stderr)
    return 2 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
