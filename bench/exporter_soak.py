#!/usr/bin/env python3
"""The exporter soaked as an operator runs it on a busy node (issue 19): every default
collector, scraped every 2 s the way Prometheus does (OpenMetrics, gzip), first on an idle
node, then while the node makes ~200k syscalls/s (bench/c/workloads.c getppid, paced), spawns
short-lived processes in a tight loop (`sh` running `/bin/true`) and writes 4 KiB O_DIRECT
(workloads odirect to a file). Prints, per minute: RSS, the exporter's CPU, scrapes, failures,
series, CPU ms per scrape, the mean of bpfsight_scrape_duration_seconds and map drains; then
what each collector's BPF programs cost per event class (bpf_stats, from the exporter's own
self-metrics) and ms from exec to serving (the banner), warm.

    .venv/bin/python bench/exporter_soak.py [--idle 60] [--busy 300] [--starts 5]
"""
import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORKLOADS = BENCH / "results" / "build" / "workloads"
ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
TICK = os.sysconf("SC_CLK_TCK")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)", re.M)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) / 1024


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def scrape(url):
    req = urllib.request.Request(url, headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return gzip.decompress(r.read()).decode()


def samples(text, name):
    """{labels text: value} of one metric's samples."""
    return {m.group(2) or "": float(m.group(3)) for m in SAMPLE.finditer(text)
            if m.group(1) == name}


def start_exporter(args):
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bpfsight", "exporter", "--listen",
                             "127.0.0.1:0"] + args, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    ms = (time.perf_counter() - t0) * 1e3
    match = re.search(r"(http://\S+/metrics)", line)
    if not match:
        proc.kill()
        sys.exit(f"exporter did not start: {line!r}")
    return proc, match.group(1), ms


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def churn(path):
    """The busy node's workloads, each in its own process group."""
    w = str(WORKLOADS)
    cmds = [f"echo | {w} getppid 1000000000000 200000",
            "while :; do /bin/true; done",
            f"while :; do echo | {w} odirect {path} 20000 >/dev/null; done"]
    return [subprocess.Popen(["sh", "-c", c], start_new_session=True,
                             stdout=subprocess.DEVNULL) for c in cmds]


def soak(url, pid, seconds, phase, interval, rows):
    """Scrape every `interval` s for `seconds`; a row per minute (and one for the rest)."""
    start = time.monotonic()
    mark = (start, cpu_s(pid))
    scrapes = failures = 0
    durations, text = [], ""
    while True:
        now = time.monotonic()
        if now - mark[0] >= 60 or now - start >= seconds:
            cpu = cpu_s(pid)
            drains = sum(samples(text, "bpfsight_map_drains_total").values())
            rows.append((phase, (now - start) / 60, rss_mb(pid), cpu - mark[1], scrapes,
                         failures, sum(1 for ln in text.splitlines() if ln and ln[0] != "#"),
                         (cpu - mark[1]) / max(scrapes, 1) * 1e3,
                         sum(durations) / max(len(durations), 1) * 1e3, drains))
            print("  %-4s %4.1f min  RSS %5.1f MB  CPU %5.2f s  scrapes %3d  failures %d  "
                  "series %4d  %6.1f ms CPU/scrape  scrape %6.1f ms  drains %d"
                  % rows[-1], flush=True)
            mark, scrapes, failures, durations = (now, cpu), 0, 0, []
            if now - start >= seconds:
                return text
        t = time.monotonic()
        try:
            text = scrape(url)
            scrapes += 1
            durations += samples(text, "bpfsight_scrape_duration_seconds").values()
        except OSError:
            failures += 1
        time.sleep(max(0.0, interval - (time.monotonic() - t)))


def bpf_cost(first, last, seconds):
    """(collector, program, event, runs/s, ns per run, % of one CPU) between two scrapes."""
    runs0 = samples(first, "bpfsight_bpf_program_runs_total")
    secs0 = samples(first, "bpfsight_bpf_program_run_seconds_total")
    secs1 = samples(last, "bpfsight_bpf_program_run_seconds_total")
    out = []
    for labels, runs in samples(last, "bpfsight_bpf_program_runs_total").items():
        n = runs - runs0.get(labels, 0)
        s = secs1[labels] - secs0.get(labels, 0)
        if n > 0:
            found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            out.append((found["collector"], found["program"], found.get("event", "?"),
                        n / seconds, s / n * 1e9, s / seconds * 100))
    return sorted(out, key=lambda r: -r[5])


def per_event(cost):
    """(event, events/s, ns of all collectors' programs per event, % of one CPU): each
    program on a hook runs once per event, so the busiest one's runs count the events."""
    events = {}
    for _, _, event, rate, ns, pct in cost:
        e = events.setdefault(event, [0.0, 0.0, 0.0])
        e[0], e[1], e[2] = max(e[0], rate), e[1] + rate * ns, e[2] + pct
    return sorted(((ev, r, t / r, pct) for ev, (r, t, pct) in events.items()),
                  key=lambda row: -row[3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=60, help="seconds scraped before the churn")
    ap.add_argument("--busy", type=int, default=300, help="seconds scraped under the churn")
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--starts", type=int, default=5, help="warm starts timed after the soak")
    ap.add_argument("exporter_args", nargs="*", help="more exporter arguments (after --)")
    args = ap.parse_args()
    if not WORKLOADS.exists():
        WORKLOADS.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", str(WORKLOADS), str(BENCH / "c/workloads.c")],
                       check=True)
    target = tempfile.NamedTemporaryFile(dir="/var/tmp", prefix="soak-odirect-")
    target.truncate(16 << 20)  # 4096 blocks of 4 KiB, rewritten in turn
    exporter, url, _ = start_exporter(args.exporter_args)
    rows, jobs = [], []
    try:
        print(f"exporter pid {exporter.pid}, {url}; idle {args.idle} s, then churn "
              f"{args.busy} s, a scrape every {args.interval} s", flush=True)
        soak(url, exporter.pid, args.idle, "idle", args.interval, rows)
        jobs = churn(target.name)
        first, t0 = scrape(url), time.monotonic()
        last = soak(url, exporter.pid, args.busy, "busy", args.interval, rows)
        cost = bpf_cost(first, last, time.monotonic() - t0)
    finally:
        for j in jobs:
            os.killpg(j.pid, 9)
        stop(exporter)
    for phase in ("idle", "busy"):
        r = [x for x in rows if x[0] == phase]
        n = sum(x[4] for x in r)
        print(f"{phase}: {sum(x[3] for x in r) / max(n, 1) * 1e3:.1f} ms CPU per scrape, "
              f"scrape duration {sum(x[8] * x[4] for x in r) / max(n, 1):.1f} ms, {n} scrapes, "
              f"{sum(x[5] for x in r)} failures")
    print(f"RSS after the soak {rows[-1][2]:.1f} MB; series {rows[-1][6]}")
    print("BPF cost under the churn (bpf_stats):\n  collector    program                  "
          "runs/s      ns/run  % of one CPU")
    for c, p, _, rate, ns, pct in cost:
        print(f"  {c:<12} {p:<22} {rate:>10,.0f} {ns:>9.0f} {pct:>8.2f}")
    print(f"  all programs: {sum(r[5] for r in cost):.2f}% of one CPU\n"
          "per event class, all collectors together:\n  event                  events/s  ns/event"
          "  % of one CPU")
    for event, rate, ns, pct in per_event(cost):
        print(f"  {event:<22} {rate:>10,.0f} {ns:>9.0f} {pct:>8.2f}")
    times = []
    for _ in range(args.starts):
        proc, _, ms = start_exporter(args.exporter_args)
        stop(proc)
        times.append(ms)
    if times:
        print(f"start-up to serving, warm: median {sorted(times)[len(times) // 2]:.0f} ms "
              f"(runs {', '.join(f'{t:.0f}' for t in times)})")


if __name__ == "__main__":
    main()
