#!/usr/bin/env python3
"""Counts the requests in an MLflow server's access log (uvicorn: one line per
request, on the server's stdout) after a given line number.

Reads are GETs plus the POST search endpoints (logged-models/search,
runs/search, experiments/search); everything else is a write. `/health` is
left out. Prints `reads=R writes=W total=T` and, with --endpoints, one line
per method and path (query stripped), most frequent first.

Usage: count_requests.py LOG FROM_LINE [--endpoints]
"""
import re
import sys
from collections import Counter

LINE = re.compile(r'"(GET|POST|PATCH|PUT|DELETE) ([^ ?"]+)[^"]*" (\d{3})')
POST_READS = ("/search",)


def main():
    log, start = sys.argv[1], int(sys.argv[2])
    endpoints = Counter()
    statuses = Counter()
    reads = writes = 0
    with open(log, errors="replace") as f:
        for i, line in enumerate(f):
            if i < start:
                continue
            m = LINE.search(line)
            if not m or m.group(2) == "/health":
                continue
            method, path, status = m.groups()
            endpoints[f"{method} {path}"] += 1
            statuses[status] += 1
            if method == "GET" or (method == "POST" and path.endswith(POST_READS)):
                reads += 1
            else:
                writes += 1
    print(f"reads={reads} writes={writes} total={reads + writes}")
    if "--endpoints" in sys.argv:
        for ep, n in endpoints.most_common():
            print(f"  {n:7d}  {ep}")
        print("  status: " + " ".join(f"{s}={n}" for s, n in sorted(statuses.items())))


if __name__ == "__main__":
    main()
