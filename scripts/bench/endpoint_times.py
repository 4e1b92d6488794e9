#!/usr/bin/env python3
"""Sums request times by endpoint from a log holding `endpoint=PATH` and
`elapsed_ms=MS` on one line per request: modelsync's `-vv` request log
(`mlflow request`, stderr) or python_client_apply.py's --timings file.
Times are the client's (request sent -> answer read): with one request in
flight, the server's time plus loopback; with many, queueing too.

Prints one line per endpoint, costliest first: count, total ms, mean ms,
then the total.

Usage: endpoint_times.py LOG [PER_N]   (PER_N: also print count per N)
"""
import re
import sys
from collections import defaultdict

LINE = re.compile(r'endpoint="?([^" ]+)"?.*?elapsed_ms=(\d+)')


def main():
    per = float(sys.argv[2]) if len(sys.argv) > 2 else None
    count, total = defaultdict(int), defaultdict(int)
    with open(sys.argv[1], errors="replace") as f:
        for line in f:
            m = LINE.search(line)
            if m:
                ep = m.group(1).replace("/api/2.0/mlflow/", "").replace("/ajax-api/2.0/mlflow/", "")
                count[ep] += 1
                total[ep] += int(m.group(2))
    for ep in sorted(total, key=total.get, reverse=True):
        extra = f"  {count[ep] / per:5.2f}/model" if per else ""
        print(f"  {count[ep]:6d} {total[ep]:9d} ms {total[ep] / count[ep]:7.1f} ms/req{extra}  {ep}")
    n, t = sum(count.values()), sum(total.values())
    print(f"  {n:6d} {t:9d} ms {t / max(n, 1):7.1f} ms/req  (all)")


if __name__ == "__main__":
    main()
