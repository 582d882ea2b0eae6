#!/usr/bin/env python3
"""Benchmark (not a test): what profiling one CPU-bound Python process at 99 Hz costs, per way
of walking its stacks, beside py-spy at the same rate; and how whole the stacks are.

The target is Debian's python3 (no frame pointers, no symbols) spinning in one function, which
counts its loop iterations per second of its OWN CPU time: time it lost to other load does
not count, while what the sampling does to it (the interrupt and the BPF program, or py-spy's
reads of its memory) does. Per round and variant:
  * slowdown: the target's iterations per CPU-second against the unprofiled rounds' median;
  * profiler CPU: the profiler process's own CPU time (utime + stime, /proc/PID/stat) while
    sampling, from one second after it attached to the end, as a share of one CPU (the report
    at exit, symbolization and naming Python frames, comes after and is not in it);
  * BPF CPU: the sampling program's run time as the kernel counts it (--stats), which is
    charged to the sampled tasks (so already inside the slowdown), as a share of one CPU;
  * whole stacks: the share of samples whose user stack reaches _start.

    sudo .venv/bin/python bench/python_profile_cost.py [--seconds 6] [--rounds 3]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
PY_SPY = os.path.join(os.path.dirname(sys.executable), "py-spy")
TARGET_PYTHON = "/usr/bin/python3"

SPINNER = r"""
import sys, time

def spin(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

print("ready", flush=True)
sys.stdin.readline()
end = time.monotonic() + float(sys.argv[1])
cpu0, iters = time.process_time(), 0
while time.monotonic() < end:
    spin(10000)
    iters += 1
print(iters / (time.process_time() - cpu0), flush=True)
"""

VARIANTS = {
    "none": None,
    "bpfsight, frame pointers, native only": ["--unwind", "fp", "--no-python"],
    "bpfsight, frame pointers + Python frames": ["--unwind", "fp"],
    "bpfsight, .eh_frame + Python frames (default)": [],
    "py-spy --nonblocking": "py-spy",
}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(variant, pid, rate):
    if variant == "py-spy":
        return subprocess.Popen([PY_SPY, "record", "--nonblocking", "--rate", str(rate), "-p",
                                 str(pid), "--format", "raw", "-o", os.devnull],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen([sys.executable, "-m", "bpfsight", "profile", "-F", str(rate), "-p",
                             str(pid), "-U", "--json", "--stats", *variant],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stderr.readline()
    if "Sampling" not in line:
        raise SystemExit(f"profile did not start: {line}{proc.stderr.read()}")
    return proc


def stop(variant, proc):
    """(BPF ns, samples, samples whose user stack reaches _start) of one run."""
    proc.send_signal(signal.SIGINT)
    if variant == "py-spy":
        proc.wait(timeout=60)
        return 0, 0, 0
    out, err = proc.communicate(timeout=120)
    stats = next(json.loads(ln)["stats"] for ln in err.splitlines()
                 if ln.startswith("{") and '"stats"' in ln)
    bpf_ns = sum(p["run_time_ns"] for p in stats["programs"] if p["program"] == "profile_sample")
    samples = whole = 0
    for rec in map(json.loads, out.splitlines()):
        if "user_stack" in rec:
            samples += rec["value"]
            whole += rec["value"] if rec["user_stack"][-1:] == ["_start"] else 0
    return bpf_ns, samples, whole


def one_round(script, seconds, variant, rate):
    target = subprocess.Popen([TARGET_PYTHON, script, str(seconds)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert target.stdout.readline().startswith("ready")
    prof = start(variant, target.pid, rate) if variant is not None else None
    target.stdin.write("go\n")
    target.stdin.flush()
    time.sleep(1)
    t0, c0 = time.monotonic(), cpu_seconds(prof.pid) if prof else 0
    rate_line = target.stdout.readline()
    t1, c1 = time.monotonic(), cpu_seconds(prof.pid) if prof else 0
    target.wait()
    result = {"rate": float(rate_line), "profiler_cpu": (c1 - c0) / (t1 - t0) if prof else 0}
    if prof:
        bpf_ns, samples, whole = stop(variant, prof)
        result.update(bpf_cpu=bpf_ns / 1e9 / seconds, samples=samples, whole=whole)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=6)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=int, default=99)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "spin.py")
        with open(script, "w") as f:
            f.write(SPINNER)
        runs = {name: [] for name in VARIANTS}
        for _ in range(args.rounds):  # variants alternate within each round
            for name, variant in VARIANTS.items():
                runs[name].append(one_round(script, args.seconds, variant, args.rate))
    base = statistics.median(r["rate"] for r in runs["none"])
    print(f"Debian python3 spinning {args.seconds} s per run, {args.rounds} rounds, "
          f"{args.rate} Hz; baseline {base:,.0f} iterations per CPU-second")
    print("| profiler | target slowdown % | profiler CPU % of one CPU | BPF CPU % of one CPU "
          "| samples | stacks reaching _start % |")
    print("|---|---|---|---|---|---|")
    for name, rs in runs.items():
        if name == "none":
            continue
        slow = (1 - statistics.median(r["rate"] for r in rs) / base) * 100
        cpu = statistics.median(r["profiler_cpu"] for r in rs) * 100
        if "samples" in rs[0]:
            bpf = statistics.median(r["bpf_cpu"] for r in rs) * 100
            samples = sum(r["samples"] for r in rs)
            whole = sum(r["whole"] for r in rs) / samples * 100 if samples else 0
            tail = f"{bpf:.3f} | {samples} | {whole:.1f}"
        else:
            tail = "n/a | n/a | n/a"
        print(f"| {name} | {slow:+.2f} | {cpu:.2f} | {tail} |")


if __name__ == "__main__":
    main()
