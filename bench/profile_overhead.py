#!/usr/bin/env python3
"""Benchmark (not a test): what `bpfsight profile` costs a CPU-bound workload at 49/99/999 Hz,
and how fast stacks are symbolized.

CPU overhead, measured two ways:
  * slowdown: one C spinner per CPU counts loop iterations per second of its OWN CPU time
    (CLOCK_PROCESS_CPUTIME_ID), so time it lost to other load does not count, while the
    sampling interrupt and the BPF program, charged to the interrupted task, do. Baseline and
    profiled rounds alternate; the median of each is compared.
  * BPF time: the kernel's run-time statistics of the sampling program (--stats), as a share
    of all CPUs' time.
Symbolization: 100k distinct user addresses inside the executable mappings of this process
(python, libc, numpy's libraries...) and 100k distinct kernel addresses, first cold (ELF and
kallsyms read included), then warm (cached).

    sudo .venv/bin/python bench/profile_overhead.py [--seconds 4] [--rounds 3]
"""
import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

SPINNER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv)
{
	double end = now(CLOCK_MONOTONIC) + atof(argv[1]), cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
	volatile unsigned long x = 0;
	unsigned long iters = 0;
	while (now(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < 100000; i++)
			x += i;
		iters++;
	}
	printf("%f\n", iters / (now(CLOCK_PROCESS_CPUTIME_ID) - cpu0));
	return 0;
}
"""


def build_spinner(directory):
    src, binary = os.path.join(directory, "spin.c"), os.path.join(directory, "spin")
    with open(src, "w") as f:
        f.write(SPINNER)
    subprocess.run(["gcc", "-O2", "-o", binary, src], check=True)
    return binary


def spin_rate(binary, seconds, ncpu):
    """Iterations per CPU-second, averaged over one spinner per CPU."""
    procs = [subprocess.Popen([binary, str(seconds)], stdout=subprocess.PIPE, text=True)
             for _ in range(ncpu)]
    return statistics.mean(float(p.communicate()[0]) for p in procs)


def start_profiler(freq):
    proc = subprocess.Popen([sys.executable, "-m", "bpfsight", "profile", "-F", str(freq),
                             "--json", "--stats"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=os.path.join(HERE, ".."))
    line = proc.stderr.readline()  # the banner: attached
    if "Sampling" not in line:
        raise SystemExit(f"profile did not start: {line}{proc.stderr.read()}")
    return proc


def stop_profiler(proc):
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    stats = next(json.loads(ln)["stats"] for ln in err.splitlines()
                 if ln.startswith("{") and '"stats"' in ln)
    return stats


def overhead(binary, seconds, rounds, rates):
    ncpu = os.cpu_count()
    base, runs = [], {f: [] for f in rates}
    for _ in range(rounds):
        base.append(spin_rate(binary, seconds, ncpu))
        for f in rates:
            prof = start_profiler(f)
            rate = spin_rate(binary, seconds, ncpu)
            stats = stop_profiler(prof)
            runs[f].append((rate, stats))
    b = statistics.median(base)
    print(f"CPU-bound workload: {ncpu} spinners x {seconds} s, {rounds} rounds; baseline "
          f"{b:,.0f} iterations per CPU-second (spread {min(base) / b - 1:+.2%} .. "
          f"{max(base) / b - 1:+.2%})")
    print("%8s %12s %14s %12s %14s" % ("rate", "slowdown", "BPF ns/sample", "BPF CPU",
                                       "samples/s"))
    for f in rates:
        rate = statistics.median(r for r, _ in runs[f])
        progs = [p for _, s in runs[f] for p in s["programs"] if p["program"] == "profile_sample"]
        ns = sum(p["run_time_ns"] for p in progs)
        count = sum(p["runs"] for p in progs)
        secs = sum(s["seconds"] for _, s in runs[f])
        bpf_share = ns / (secs * 1e9 * ncpu)
        print("%6d Hz %+11.2f%% %14.0f %11.3f%% %14.0f" % (
            f, (1 - rate / b) * 100, ns / count if count else 0, bpf_share * 100, count / secs))


def symbolization(n=100000):
    import numpy  # noqa: F401  (maps numpy's libraries into this process)
    from bpfsight.profile import symbols
    from bpfsight.profile.symbols import Symbolizer, read_maps
    rng = random.Random(1)
    maps = [m for m in read_maps(os.getpid()) if m.file_backed]
    sizes = [m.end - m.start for m in maps]
    user = set()
    while len(user) < n:
        m = rng.choices(maps, weights=sizes)[0]
        user.add(rng.randrange(m.start, m.end))
    user = sorted(user)
    with open("/proc/kallsyms") as f:
        kaddrs = sorted({int(ln.split()[0], 16) for ln in f if ln.split()[1] in "tT"})
    kernel = sorted(set(rng.sample(range(kaddrs[0], kaddrs[-1]), n)))

    def timed(fn):
        t0 = time.perf_counter()
        names = fn()
        return time.perf_counter() - t0, names

    symbols.kernel_symbols.cache_clear()
    sym = Symbolizer()
    cold_u, names_u = timed(lambda: sym.user(os.getpid(), user))
    cold_k, names_k = timed(lambda: sym.kernel(kernel))
    warm_u, _ = timed(lambda: sym.user(os.getpid(), user))
    warm_k, _ = timed(lambda: sym.kernel(kernel))
    known = sum(nm != symbols.UNKNOWN for nm in names_u)
    print(f"symbolization of {len(user):,} distinct user frames ({len(maps)} mapped files, "
          f"{known / len(user):.0%} named): cold {cold_u:.2f} s "
          f"({len(user) / cold_u:,.0f}/s), warm {warm_u:.2f} s ({len(user) / warm_u:,.0f}/s)")
    print(f"symbolization of {len(kernel):,} distinct kernel frames: cold {cold_k:.2f} s "
          f"(kallsyms read included), warm {warm_k:.2f} s ({len(kernel) / warm_k:,.0f}/s); "
          f"{sum(nm != symbols.UNKNOWN for nm in names_k) / len(kernel):.0%} named")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rates", default="49,99,999")
    p.add_argument("--skip-overhead", action="store_true")
    args = p.parse_args()
    if not args.skip_overhead:
        with tempfile.TemporaryDirectory() as d:
            overhead(build_spinner(d), args.seconds, args.rounds,
                     [int(x) for x in args.rates.split(",")])
    symbolization()


if __name__ == "__main__":
    main()
