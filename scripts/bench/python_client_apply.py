#!/usr/bin/env python3
"""The apply of the benchmark manifests, scripted the way teams write it
with MLflow's Python client (the baseline for `modelsync apply`).

Reads the manifests written by gen_manifests.py and, per model, one call
after another: create the registered model (description, tags), register
each declared version (`create_model_version`), move each stage with
`transition_model_version_stage(archive_existing_versions=True)`, set the
aliases. With --wave, the models exist already: register only the versions
that are not registered yet (by source) and move the stages and aliases
that changed — still one call at a time, no reads the script does not need
beyond one `search_model_versions` per model.

Prints `import_s=… loop_s=… models=…` on stderr.

Usage: python_client_apply.py --tracking-uri URI DIR [--wave]
"""
import argparse
import os
import sys
import time

t0 = time.perf_counter()
import yaml  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

import_s = time.perf_counter() - t0


def manifests(d):
    for f in sorted(os.listdir(d)):
        if f.endswith(".yaml"):
            with open(os.path.join(d, f)) as fh:
                for doc in yaml.safe_load_all(fh):
                    if doc:
                        yield doc


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("dir")
    p.add_argument("--wave", action="store_true")
    a = p.parse_args()
    c = MlflowClient(tracking_uri=a.tracking_uri, registry_uri=a.tracking_uri)
    t = time.perf_counter()
    n = 0
    for doc in manifests(a.dir):
        name, spec = doc["metadata"]["name"], doc["spec"]
        number = {}
        if a.wave:
            for v in c.search_model_versions(f"name='{name}'"):
                number[v.source] = int(v.version)
        else:
            c.create_registered_model(name, tags=spec.get("tags"), description=spec.get("description"))
        for handle, v in spec["versions"].items():
            if v["source"] not in number:
                mv = c.create_model_version(name, v["source"])
                number[v["source"]] = int(mv.version)
        src = {h: v["source"] for h, v in spec["versions"].items()}
        for stage, handle in spec.get("stages", {}).items():
            if a.wave and handle != wave_target(spec):
                continue
            c.transition_model_version_stage(name, number[src[handle]], stage, archive_existing_versions=True)
        for alias, handle in spec.get("aliases", {}).items():
            if a.wave and handle != wave_target(spec):
                continue
            c.set_registered_model_alias(name, alias, number[src[handle]])
        n += 1
    print(f"import_s={import_s:.2f} loop_s={time.perf_counter() - t:.2f} models={n}", file=sys.stderr)


def wave_target(spec):
    """In a wave only the newest version's moves are new."""
    return list(spec["versions"])[-1]


if __name__ == "__main__":
    main()
