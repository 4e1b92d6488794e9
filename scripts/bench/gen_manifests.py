#!/usr/bin/env python3
"""Writes N RegisteredModel manifests (one file each) for the benchmarks.

Each model declares V versions by source (s3://modelsync-bench/<model>/v<k>,
registered if absent), a description, one model tag, Production and Staging
(the two newest versions) and the aliases champion/challenger on the same
versions. Deterministic: the same N and V give the same bytes.

With --wave, a promotion wave on top of that: one more version r<V+1>,
and Production and champion move to it (Staging and challenger stay).

Usage: gen_manifests.py N OUTDIR [--versions V] [--prefix bench-model] [--wave]
"""
import argparse
import os


def manifest(name: str, versions: int, wave: bool = False) -> str:
    lines = [
        "apiVersion: modelsync/v1",
        "kind: RegisteredModel",
        "metadata:",
        f"  name: {name}",
        "spec:",
        f"  description: benchmark model {name}",
        "  tags:",
        "    team: bench",
        "  versions:",
    ]
    for k in range(1, versions + 1 + int(wave)):
        lines.append(f"    r{k}:")
        lines.append(f"      source: s3://modelsync-bench/{name}/v{k}")
    prod, staging = max(1, versions - 1), versions
    champion = versions + 1 if wave else prod
    if wave:
        prod = versions + 1
    lines += [
        "  stages:",
        f"    Production: r{prod}",
    ]
    if staging != prod:
        lines.append(f"    Staging: r{staging}")
    lines += [
        "  aliases:",
        f"    champion: r{champion}",
        f"    challenger: r{staging}",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("n", type=int)
    p.add_argument("outdir")
    p.add_argument("--versions", type=int, default=5)
    p.add_argument("--prefix", default="bench-model")
    p.add_argument("--wave", action="store_true")
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    width = max(4, len(str(a.n)))
    for i in range(1, a.n + 1):
        name = f"{a.prefix}-{i:0{width}d}"
        with open(os.path.join(a.outdir, f"{name}.yaml"), "w") as f:
            f.write(manifest(name, a.versions, a.wave))


if __name__ == "__main__":
    main()
