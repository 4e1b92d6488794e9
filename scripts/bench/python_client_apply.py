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

With --archive-explicit, each stage move is sent with
`archive_existing_versions=False` and the versions the script knows hold
that stage (those it moved there, or found there in --wave's search) are
moved to Archived one call each: MLflow 3.17's PostgreSQL store fails the
server-side archival. From empty there is nothing to archive.

With --timings FILE, every HTTP request the client sends is timed and
written to FILE as `endpoint=PATH elapsed_ms=MS`, one line each (the same
words as modelsync's `-vv` request log; scripts/bench/endpoint_times.py
sums either).

Prints `import_s=… loop_s=… models=…` on stderr.

Usage: python_client_apply.py --tracking-uri URI DIR [--wave] [--archive-explicit] [--timings FILE]
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
    p.add_argument("--archive-explicit", action="store_true")
    p.add_argument("--timings")
    a = p.parse_args()
    if a.timings:
        time_requests(a.timings)
    c = MlflowClient(tracking_uri=a.tracking_uri, registry_uri=a.tracking_uri)
    t = time.perf_counter()
    n = 0
    for doc in manifests(a.dir):
        name, spec = doc["metadata"]["name"], doc["spec"]
        number, holders = {}, {}
        if a.wave:
            for v in c.search_model_versions(f"name='{name}'"):
                number[v.source] = int(v.version)
                holders.setdefault(v.current_stage, set()).add(int(v.version))
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
            version = number[src[handle]]
            if not a.archive_explicit:
                c.transition_model_version_stage(name, version, stage, archive_existing_versions=True)
                continue
            c.transition_model_version_stage(name, version, stage, archive_existing_versions=False)
            for old in sorted(holders.get(stage, set()) - {version}):
                c.transition_model_version_stage(name, old, "Archived")
            holders[stage] = {version}
        for alias, handle in spec.get("aliases", {}).items():
            if a.wave and handle != wave_target(spec):
                continue
            c.set_registered_model_alias(name, alias, number[src[handle]])
        n += 1
    print(f"import_s={import_s:.2f} loop_s={time.perf_counter() - t:.2f} models={n}", file=sys.stderr)


def time_requests(path):
    """Wraps the client's one HTTP function: each request's endpoint and
    wall time, appended to `path`."""
    from mlflow.utils import rest_utils

    out = open(path, "a", buffering=1)
    inner = rest_utils.http_request

    def timed(host_creds, endpoint, method, *args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(host_creds, endpoint, method, *args, **kwargs)
        finally:
            ms = (time.perf_counter() - t) * 1000
            out.write(f"endpoint={endpoint} elapsed_ms={ms:.0f}\n")

    rest_utils.http_request = timed


def wave_target(spec):
    """In a wave only the newest version's moves are new."""
    return list(spec["versions"])[-1]


if __name__ == "__main__":
    main()
