#!/usr/bin/env python3
"""The exporter's memory over time (issue goal: RSS <= 80 MB after 10 minutes). `bpfsight
exporter` runs with every collector and is scraped once a second while short-lived processes
(`ls -l /usr/bin`, `sh`, `true`) start about four times a second, so per-process series come
and go up to the cardinality cap. Prints VmRSS each minute and VmHWM at the end.

    .venv/bin/python bench/exporter_memory.py [--seconds 600]
"""
import argparse
import re
import subprocess
import sys
import time
import urllib.request

CHURN = "while :; do ls -l /usr/bin >/dev/null; sh -c true; true; sleep 0.2; done"


def status_mb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ":")) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=600)
    args = ap.parse_args()
    exporter = subprocess.Popen([sys.executable, "-m", "bpfsight", "exporter", "--listen",
                                 "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    churn = subprocess.Popen(["sh", "-c", CHURN])
    try:
        line = exporter.stdout.readline()
        url = re.search(r"(http://\S+/metrics)", line).group(1)
        start = last = time.monotonic()
        print(f"  0 min: VmRSS {status_mb(exporter.pid, 'VmRSS'):.1f} MB", flush=True)
        scrapes = 0
        while time.monotonic() - start < args.seconds:
            urllib.request.urlopen(url, timeout=10).read()
            scrapes += 1
            time.sleep(1)
            if time.monotonic() - last >= 60:
                last = time.monotonic()
                print(f"{(last - start) / 60:3.0f} min: VmRSS "
                      f"{status_mb(exporter.pid, 'VmRSS'):.1f} MB", flush=True)
        print(f"{scrapes} scrapes; VmHWM {status_mb(exporter.pid, 'VmHWM'):.1f} MB "
              f"(goal <= 80 MB)")
    finally:
        churn.kill()
        exporter.terminate()
        exporter.wait(timeout=30)


if __name__ == "__main__":
    main()
