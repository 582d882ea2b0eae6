#!/usr/bin/env python3
"""What `bpfsight diagnose` costs on a host doing N syscalls/s and M context switches/s (issue
goal: diagnose's BPF time <= 2% of one CPU at 200k syscalls/s plus 50k context switches/s). A C
workload makes getppid() calls at a fixed rate; a second one passes a byte back and forth
between two processes over pipes, paced so the host switches about M times a second (each
hand-over blocks one side and wakes the other); diagnose runs host-wide for the window; the cost
is the CPU time of its BPF programs (kernel bpf_stats, enabled only for the measurement) plus
diagnose's own user+system CPU, divided by the wall time. The context switches are counted by
the kernel (/proc/stat ctxt) over the window, so the rate reported is what happened, not what
was asked for.

    .venv/bin/python bench/diagnose_overhead.py [--rate 200000] [--switches 50000] [--seconds 10]
"""
import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

PACED = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long rate = atol(argv[1]); double secs = atof(argv[2]);
    struct timespec t0, t; clock_gettime(CLOCK_MONOTONIC, &t0);
    long done = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double el = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
        if (el >= secs) break;
        long due = (long)(el * rate);
        while (done < due) { getppid(); done++; }
        struct timespec nap = {0, 200000}; nanosleep(&nap, 0);   /* 0.2 ms steps */
    }
    printf("%ld\n", done);
    return 0;
}
"""


# Two processes hand a byte to each other over two pipes; each hand-over is a block and a
# wakeup. Paced in 1 ms steps to `rate` round trips per second.
PINGPONG = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long rate = atol(argv[1]); double secs = atof(argv[2]);
    int a[2], b[2]; char c = 0;
    if (pipe(a) || pipe(b)) return 1;
    if (fork() == 0) {
        close(a[1]); close(b[0]);  /* so the parent's close ends the loop */
        while (read(a[0], &c, 1) == 1) write(b[1], &c, 1);
        return 0;
    }
    close(a[0]); close(b[1]);
    struct timespec t0, t; clock_gettime(CLOCK_MONOTONIC, &t0);
    long done = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        double el = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
        if (el >= secs) break;
        long due = (long)(el * rate);
        while (done < due) { write(a[1], &c, 1); read(b[0], &c, 1); done++; }
        struct timespec nap = {0, 1000000}; nanosleep(&nap, 0);
    }
    close(a[1]);
    printf("%ld\n", done);
    return 0;
}
"""


def context_switches():
    with open("/proc/stat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("ctxt"))


def prog_stats():
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True)
    return {p["id"]: (p.get("name", ""), p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in json.loads(out.stdout or "[]")}


def main():
    # SIGTERM (a timeout) must still run the finally that restores bpf_stats_enabled
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=200_000, help="getppid() calls per second")
    ap.add_argument("--switches", type=int, default=50_000,
                    help="context switches per second to aim for (0: none)")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    src, binary = os.path.join(tmp, "paced.c"), os.path.join(tmp, "paced")
    with open(src, "w") as f:
        f.write(PACED)
    subprocess.run(["gcc", "-O2", "-o", binary, src], check=True)
    pp_src, pingpong = os.path.join(tmp, "pingpong.c"), os.path.join(tmp, "pingpong")
    with open(pp_src, "w") as f:
        f.write(PINGPONG)
    subprocess.run(["gcc", "-O2", "-o", pingpong, pp_src], check=True)
    bpfsight = [sys.executable, "-m", "bpfsight"]
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "bench_run", os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.build()
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        old = f.read().strip()
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        before = prog_stats()
        work = subprocess.Popen([binary, str(args.rate), str(args.seconds + 2)],
                                stdout=subprocess.PIPE, text=True)
        # a round trip is two hand-overs; each switches a CPU to the woken side and, when the
        # other side blocks, away from it: 2.5 switches per round trip measured on 2 vCPUs
        # (the woken side often runs on the CPU the other just left)
        pp = subprocess.Popen([pingpong, str(int(args.switches / 2.5)), str(args.seconds + 2)],
                              stdout=subprocess.PIPE, text=True) if args.switches else None
        # the floor: empty tp_btf programs on sched_switch and sys_exit, loaded alongside. What
        # any program on these hooks costs, bpf_stats' own clock reads included: diagnose's
        # net cost is what its programs take above it
        floor = subprocess.Popen([str(bench.BUILD / "loader"), str(bench.BUILD / "minimal.bpf.o"),
                                  "empty_switch", "empty_sys_exit"], stdout=subprocess.PIPE,
                                 text=True)
        assert floor.stdout.readline().strip() == "attached"
        time.sleep(0.5)
        ctxt0 = context_switches()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        diag = subprocess.Popen(bpfsight + ["diagnose", "-d", str(args.seconds), "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        after = {}
        while diag.poll() is None:  # the programs vanish with diagnose: sample while it runs
            after.update(prog_stats())
            time.sleep(0.25)
        out, err = diag.communicate()
        floor.terminate()
        floor.wait()
        diag.stdout, diag.stderr = out, err
        wall = time.monotonic() - t0
        switches = context_switches() - ctxt0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        calls = int(work.communicate()[0])
        trips = int(pp.communicate()[0]) if pp else 0
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(old)
    if diag.returncode:
        sys.exit(diag.stderr)
    ours = {i: v for i, v in after.items() if i not in before and
            v[0].startswith(("diagnose_", "biolat_", "syscount_"))}
    bpf_ns = sum(v[1] for v in ours.values())
    runs = sum(v[2] for v in ours.values())
    user_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    report = json.loads(diag.stdout)
    print(f"workload: {calls / (args.seconds + 2):,.0f} getppid/s, "
          f"{trips / (args.seconds + 2):,.0f} pipe round trips/s; host: "
          f"{switches / wall:,.0f} context switches/s (/proc/stat); diagnose window "
          f"{report['duration_s']:.1f} s, wall {wall:.1f} s")
    print(f"BPF programs: {runs:,} runs, {bpf_ns / 1e6:.1f} ms, "
          f"{bpf_ns / runs if runs else 0:.0f} ns/run (bpf_stats' own clock reads included: see "
          "the floor below)")
    for name, ns, cnt in sorted(ours.values(), key=lambda v: -v[1]):
        print(f"  {name:<24} {cnt / report['duration_s']:>10,.0f} runs/s {ns / cnt if cnt else 0:6.0f} ns/run")
    floors = {v[0]: v[1] / v[2] for i, v in after.items() if i not in before and v[2]
              and v[0] in ("empty_switch", "empty_sys_exit")}

    def floor_of(name):  # every diagnose program is tp_btf; syscount's is on sys_exit
        return floors.get("empty_sys_exit" if name.startswith("syscount") else "empty_switch", 0)

    net_ns = sum(max(ns - cnt * floor_of(name), 0) for name, ns, cnt in ours.values())
    print("floor (empty tp_btf program, bpf_stats included): " +
          ", ".join(f"{k} {v:.0f} ns/run" for k, v in sorted(floors.items())))
    print(f"diagnose process (user+sys, incl. start-up and report): {user_s * 1000:.0f} ms")
    print(f"cost during the window: BPF {100 * bpf_ns / 1e9 / report['duration_s']:.2f}% of one "
          f"CPU as bpf_stats counts it, {100 * net_ns / 1e9 / report['duration_s']:.2f}% above "
          f"the floor; whole run incl. start-up {100 * (bpf_ns / 1e9 + user_s) / wall:.2f}% of "
          "one CPU")


if __name__ == "__main__":
    main()
