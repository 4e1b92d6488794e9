#!/usr/bin/env python3
"""CPU time (user + system, ms) spent so far by the processes of one
process group (the MLflow server and its workers) and, optionally, by one
process and its children (the PostgreSQL postmaster and its backends).
Two readings around a step give what the server spent on it, whoever
else loads the machine. Exited processes are not counted.

Prints `server_cpu_ms=… db_cpu_ms=…`.

Usage: cpu_ms.py PGID [POSTMASTER_PID]
"""
import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def stats():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            f = s[s.rindex(")") + 2:].split()
            # fields after the name: state ppid pgrp ... utime(12) stime(13)
            yield int(pid), int(f[1]), int(f[2]), int(f[11]) + int(f[12])


def main():
    pgid = int(sys.argv[1])
    post = int(sys.argv[2]) if len(sys.argv) > 2 else -1
    server = db = 0
    for pid, ppid, pgrp, ticks in stats():
        if pgrp == pgid:
            server += ticks
        if post > 0 and (pid == post or ppid == post):
            db += ticks
    print(f"server_cpu_ms={server * 1000 // TICK} db_cpu_ms={db * 1000 // TICK}")


if __name__ == "__main__":
    main()
