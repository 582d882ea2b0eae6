"""bpfsight's benchmark: one command, one table (issue 7).

    .venv/bin/python bench/run.py [--quick] [--publish]     (or bench/run)

Per-event overhead of bpfsight's aggregating tools against bpftrace and a minimal C libbpf
program doing the same map work (bench/c/minimal.bpf.c), on a syscall-, a sched- and a
block-heavy workload; start-up to attached, warm and cold; streaming rate and drops against a C
ring-buffer consumer at rising rates; RSS. Every figure is a median over rounds that interleave
the variants, and every ratio compares figures of the same run. Results go to
bench/results/latest.md (and bench/RESULTS.md with --publish). Needs root.
"""
import argparse
import os
import platform
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
BUILD = RESULTS / "build"
READY = re.compile(rb"Tracing|attached|Hit Ctrl-C")
WORK_CPU, TOOL_CPU = "1", "0"  # workloads on one CPU, consumers on the other
SETTLE_S = 1.0
GOALS = {"vs_bpftrace": 0.5, "vs_c": 1.2, "warm_ms": 60, "cold_ms": 70, "rss_mb": 80}

sys.path.insert(0, str(ROOT / "src"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- building the C side ---

def build():
    """Compile the C baselines and workloads (clang for BPF, cc + libbpf for user space)."""
    BUILD.mkdir(parents=True, exist_ok=True)
    inc = ["-I", str(ROOT / "bpf/include"), "-I", str(ROOT / "bpf/include/generated")]
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    steps = [
        ["clang", "-O2", "-g", "-Wall", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", *inc,
         "-c", str(BENCH / "c/minimal.bpf.c"), "-o", str(BUILD / "minimal.bpf.o")],
        ["cc", "-O2", "-Wall", "-o", str(BUILD / "loader"), str(BENCH / "c/loader.c"), "-lbpf"],
        ["cc", "-O2", "-Wall", "-o", str(BUILD / "ringcons"), str(BENCH / "c/ringcons.c"),
         "-lbpf"],
        ["cc", "-O2", "-Wall", "-o", str(BUILD / "workloads"), str(BENCH / "c/workloads.c")],
    ]
    for cmd in steps:
        subprocess.run(cmd, check=True)
    selftest = ROOT / "src/bpfsight/objects/selftest.bpf.o"
    if not selftest.exists():
        subprocess.run(["make", "-C", str(ROOT / "bpf"), "-j2"], check=True)


# --- processes ---

def bpfsight_env():
    """bpfsight as installed: bytecode cached (pip compiles it at install time); this checkout
    may run with PYTHONDONTWRITEBYTECODE, so the cache lives under bench/results/."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BUILD / "pycache")
    return env


def bpfsight(*args):
    """The installed command (what users run; `python -m` would add runpy's imports), or the
    module where this interpreter has no such script."""
    script = Path(sys.executable).parent / "bpfsight"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "bpfsight", *args]


class Tracer:
    """A tracer (bpfsight tool, bpftrace, C loader) started and waited for until attached."""

    def __init__(self, argv, ready=READY, env=None, cpu=TOOL_CPU, timeout=60):
        start = time.perf_counter()
        pin = ["taskset", "-c", cpu] if cpu else []  # not for start-up: taskset's exec counts
        self.proc = subprocess.Popen([*pin, *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env or bpfsight_env())
        self.output = b""
        self._wait(ready, timeout)
        self.startup_ms = (time.perf_counter() - start) * 1000

    def _wait(self, ready, timeout):
        deadline = time.monotonic() + timeout
        streams = [self.proc.stdout, self.proc.stderr]
        while not ready.search(self.output):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError(f"{self.proc.args} did not attach: {self.output[-500:]!r}")
            for s in select.select(streams, [], [], 0.5)[0]:
                self.output += os.read(s.fileno(), 65536)

    @property
    def pid(self):
        return self.proc.pid

    def status(self, field):
        """A /proc/PID/status figure in kB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.pid}/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith(field + ":"))

    def cpu_seconds(self):
        """CPU time of all its threads, in ns precision (schedstat, not clock ticks)."""
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
        return total / 1e9

    def stop(self):
        """SIGINT, then everything it printed (stdout + stderr)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return (self.output + out + err).decode(errors="replace")


class Workload:
    """bench/c/workloads.c, started gated (so a tracer can attach to its pid) on WORK_CPU."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(["taskset", "-c", WORK_CPU, str(BUILD / "workloads"),
                                      *map(str, args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    @property
    def pid(self):
        return self.proc.pid

    def go(self):
        """Run it; (operations, wall ns per operation). self.cpu_ns_per_op is the CPU time it
        (and its children) used per operation, which time spent waiting for a CPU that other
        tenants of this machine hold does not inflate."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        m = re.search(r"ops (\d+) ns (\d+)", out)
        if self.proc.returncode or not m:
            raise RuntimeError(f"workload failed: {self.proc.args} {out!r}")
        ops, ns = int(m.group(1)), int(m.group(2))
        self.cpu_ns_per_op = (usage.ru_utime + usage.ru_stime) * 1e9 / ops
        return ops, ns / ops


def median(xs):
    return statistics.median(xs) if xs else float("nan")


@contextmanager
def loop_device():
    """A loop device over a file in /dev/shm: block I/O without a real disk's noise."""
    image = tempfile.NamedTemporaryFile(dir="/dev/shm", prefix="bpfsight-bench-", delete=False)
    image.truncate(64 << 20)
    image.close()
    dev = subprocess.run(["losetup", "-f", "--show", image.name], capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
        os.unlink(image.name)


# --- per-event overhead ---

def workloads(dev, scale):
    """(name, what one operation is, workload args, tracers: variant -> argv). Syscall and
    sched costs are the workload's CPU time per operation (its BPF programs run in its context
    on its CPU, and time spent waiting while other tenants hold the CPU does not count); block
    is wall time, since completions run in the loop device's kworker."""
    c = [str(BUILD / "loader"), str(BUILD / "minimal.bpf.o")]
    bt = lambda name: ["bpftrace", str(BENCH / "bt" / f"{name}.bt")]  # noqa: E731
    return [
        ("syscall", "CPU ns per getppid() (1 sys_exit)", ("getppid", int(1_000_000 * scale)),
         {"bpfsight": bpfsight("syscount"), "bpftrace": bt("syscount"),
          "C": c + ["min_syscount"], "floor": c + ["empty_sys_exit"]}),
        ("sched", "CPU ns per pipe round trip (2 wakeups, 2 switches)",
         ("pingpong", int(100_000 * scale)),
         {"bpfsight": bpfsight("runqlat"), "bpftrace": bt("runqlat"),
          "C": c + ["min_runq_delay"], "floor": c + ["empty_switch"]}),
        ("block", "wall ns per 4 KiB O_DIRECT write (1 I/O)", ("odirect", dev, int(20_000 * scale)),
         {"bpfsight": bpfsight("biolatency"), "bpftrace": bt("biolatency"),
          "C": c + ["min_bio_issue", "min_bio_complete"],
          "floor": c + ["empty_bio_issue", "empty_bio_complete"]}),
    ]


def one_run(name, args, argv):
    """ns per operation (CPU or wall, see workloads) with argv's tracer attached (none for
    bare), and the tracer's peak RSS in kB."""
    tracer = Tracer(argv) if argv else None
    try:
        work = Workload(*args)
        _, wall_ns = work.go()
        rss = tracer.status("VmHWM") if tracer else None
    finally:
        if tracer:
            tracer.stop()
    return (wall_ns if name == "block" else work.cpu_ns_per_op), rss


def overhead(dev, rounds, scale):
    """{workload: {"unit", "ns": {variant: [ns/op]}, "rss": {variant: [kB]}}}; variants run in a
    fresh random order each round so drift in the machine's load hits all of them alike."""
    rng = random.Random(7)
    results = {}
    for name, unit, args, tracers in workloads(dev, scale):
        variants = ["bare", *tracers]
        res = results[name] = {"unit": unit, "ns": {v: [] for v in variants}, "rss": {}}
        for r in range(rounds):
            rng.shuffle(variants)
            for v in variants:
                ns, rss = one_run(name, args, tracers.get(v))
                res["ns"][v].append(ns)
                if rss:
                    res["rss"].setdefault(v, []).append(rss)
        log(f"  {name}: " + ", ".join(f"{v} {median(x):.0f}" for v, x in res["ns"].items()))
    return results


def bpf_cost(dev, scale):
    """BPF time per operation as the kernel times it (BPF stats on, a separate pass since
    timing adds to every run): the program bodies compared without the machine's noise. Per
    operation, not per run: tracers that hook fewer events run fewer programs."""
    from bpfsight.bpf.info import RunTimeStats
    costs = {}
    with RunTimeStats():
        for name, _, args, tracers in workloads(dev, scale * 0.5):
            for v, argv in tracers.items():
                tracer = Tracer(argv)
                try:
                    Workload(*args).go()
                    runs, ns = prog_runs(tracer.pid)
                finally:
                    tracer.stop()
                costs[(name, v)] = ns / args[-1]  # the workload's last argument: operations
    return costs


def prog_runs(pid):
    """(runs, run time in ns) summed over the BPF programs process pid holds."""
    from bpfsight.bpf.info import prog_info_by_id
    runs = ns = 0
    for prog_id in prog_ids(pid):
        try:
            info = prog_info_by_id(prog_id)
        except OSError:
            continue
        runs += info.run_cnt
        ns += info.run_time_ns
    return runs, ns


def prog_ids(pid):
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


# --- sampling ---

def profile_cost(rounds, scale):
    """Sampling at 99 Hz on all CPUs while a CPU-bound workload runs: its slowdown, the
    profiler's own CPU, and the CPU its BPF programs take (BPF stats on for this section: at
    ~200 runs/s their timing cost is nil)."""
    from bpfsight.bpf.info import RunTimeStats
    script = 'BEGIN { printf("attached\\n"); } profile:hz:99 { @[kstack, ustack, comm] = count(); }'
    tracers = {"bpfsight": bpfsight("profile", "-F", "99"), "bpftrace": ["bpftrace", "-e", script]}
    res = {v: {"ns": [], "tool_cpu": [], "bpf_cpu": []} for v in ["bare", *tracers]}
    rng = random.Random(11)
    with RunTimeStats():
        for _ in range(rounds):
            for v in rng.sample(list(res), len(res)):
                ns, tool_cpu, bpf_cpu = sampled_run(tracers.get(v), int(300 * scale))
                res[v]["ns"].append(ns)
                res[v]["tool_cpu"].append(tool_cpu)
                res[v]["bpf_cpu"].append(bpf_cpu)
    return res


def sampled_run(argv, millions):
    """(CPU ns per million iterations, tracer process CPU %, its BPF programs' CPU %)."""
    tracer = Tracer(argv) if argv else None
    try:
        time.sleep(SETTLE_S)  # what a tool does once, right after attaching, is start-up
        cpu0 = tracer.cpu_seconds() if tracer else 0
        bpf0 = prog_runs(tracer.pid)[1] if tracer else 0
        t0 = time.perf_counter()
        work = Workload("spin", millions)
        work.go()
        ns = work.cpu_ns_per_op  # sampling interrupts are charged to the task they interrupt
        wall = time.perf_counter() - t0
        cpu = tracer.cpu_seconds() - cpu0 if tracer else 0
        bpf = prog_runs(tracer.pid)[1] - bpf0 if tracer else 0
    finally:
        if tracer:
            tracer.stop()
    return ns, 100 * cpu / wall, 100 * bpf / 1e9 / wall


# --- start-up ---

def startup_commands():
    c = [str(BUILD / "loader"), str(BUILD / "minimal.bpf.o")]
    return [
        ("python3 -c pass (interpreter alone)", [sys.executable, "-c", "pass"], None),
        ("bpfsight runqlat", bpfsight("runqlat"), READY),
        ("bpfsight biolatency", bpfsight("biolatency"), READY),
        ("bpfsight syscount", bpfsight("syscount"), READY),
        ("bpfsight execsnoop", bpfsight("execsnoop"), re.compile(rb"PCOMM")),
        ("bpftrace runqlat.bt", ["bpftrace", str(BENCH / "bt/runqlat.bt")], READY),
        ("C libbpf runqlat (loader.c)",
         c + ["min_runq_delay"], READY),
    ]


def time_to_ready(argv, ready):
    """ms from exec to attached (to exit, for a command with no ready line), and peak RSS."""
    if ready is None:
        start = time.perf_counter()
        subprocess.run(argv, env=bpfsight_env(), check=True)
        return (time.perf_counter() - start) * 1000, None
    tracer = Tracer(argv, ready, cpu=None)
    rss = tracer.status("VmHWM")
    tracer.stop()
    return tracer.startup_ms, rss


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def startup(warm_runs, cold_runs):
    """{command: {"warm": [ms], "cold": [ms], "rss": [kB]}}; warm after one discarded run."""
    res = {}
    for label, argv, ready in startup_commands():
        r = res[label] = {"warm": [], "cold": [], "rss": []}
        time_to_ready(argv, ready)
        for _ in range(warm_runs):
            ms, rss = time_to_ready(argv, ready)
            r["warm"].append(ms)
            r["rss"] += [rss] if rss else []
        for _ in range(cold_runs):
            drop_caches()
            r["cold"].append(time_to_ready(argv, ready)[0])
        log(f"  {label}: warm {median(r['warm']):.0f} ms, cold {median(r['cold']):.0f} ms")
    return res


# --- streaming ---

def stream_consumers():
    return {"C (libbpf ring_buffer__poll)":
            lambda pid: [str(BUILD / "ringcons"), str(ROOT / "src/bpfsight/objects/selftest.bpf.o"),
                         str(pid), str(64 << 10)],
            "bpfsight (Python, mmapped ring)":
            lambda pid: [sys.executable, str(BENCH / "pyring.py"), str(pid), str(64 << 10)]}


def stream_run(consumer, rate, seconds):
    """One producer run at `rate` calls/s (0: flat out) with consumer reading its records."""
    n = int((rate or 2_000_000) * seconds)
    work = Workload("getppid", n, rate)
    tracer = Tracer(consumer(work.pid))
    try:
        cpu = -tracer.cpu_seconds()  # its start-up is not part of the streaming cost
        ops, ns_per_op = work.go()
        cpu += tracer.cpu_seconds()
    finally:
        out = tracer.stop()
    m = re.search(r"records (\d+) getppid (\d+) drops (\d+)", out)
    if not m:
        raise RuntimeError(f"consumer printed no counts: {out[-500:]!r}")
    elapsed = ops * ns_per_op / 1e9
    got, drops = int(m.group(2)), int(m.group(3))
    return {"produced_per_s": ops / elapsed, "delivered_per_s": got / elapsed,
            "drops": drops, "lost": ops - got, "cpu_pct": 100 * cpu / elapsed}


def streaming(rates, rounds, seconds):
    res = {}
    for rate in rates:
        for label, consumer in stream_consumers().items():
            runs = [stream_run(consumer, rate, seconds) for _ in range(rounds)]
            res[(rate, label)] = {k: median([r[k] for r in runs]) for k in runs[0]}
            res[(rate, label)]["drops_max"] = max(r["drops"] for r in runs)
            log(f"  {rate or 'max'}/s {label}: {res[(rate, label)]['delivered_per_s']:.0f}/s, "
                f"drops {res[(rate, label)]['drops_max']}")
    return res


# --- the report ---

def other_tracers():
    """BPF links other processes hold on this shared machine: they tax every variant alike."""
    import json
    try:
        links = json.loads(subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True,
                                          text=True).stdout or "[]")
    except (OSError, ValueError):
        return "unknown"
    hooks = {}
    for link in links:
        hook = link.get("tp_name") or link.get("type", "?")
        hooks[hook] = hooks.get(hook, 0) + 1
    return ", ".join(f"{h} ×{n}" for h, n in sorted(hooks.items())) or "none"


def fmt(x, digits=0):
    return "n/a" if x != x else f"{x:,.{digits}f}"


def added_cost(res, variant):
    """(median, noise) over rounds of (variant - bare of the same round): pairing within a round
    cancels the machine's slow drift; the noise is half the interquartile range of those
    differences."""
    diffs = [v - b for v, b in zip(res["ns"][variant], res["ns"]["bare"])]
    q = statistics.quantiles(diffs, n=4) if len(diffs) >= 2 else [0, 0, 0]
    return median(diffs), (q[2] - q[0]) / 2


def report_overhead(ov, costs):
    lines = ["## Per-event overhead",
             "",
             "ns per operation (CPU or wall time, as the operation column says), median over "
             "rounds; *added* is the median of (variant − bare) "
             "paired within each round, ± half those differences' interquartile range. "
             f"Goals: bpfsight's added cost ≤ {GOALS['vs_bpftrace']}× bpftrace's and "
             f"≤ {GOALS['vs_c']}× the minimal C program's.",
             "",
             "*floor* is empty tp_btf programs on the hooks bpfsight uses: what attaching "
             "anything there costs. (runqlat hooks sched_switch alone, where bpftrace's "
             "runqlat.bt also hooks the wakeups.)",
             "",
             "| workload | operation | bare | bpfsight added | bpftrace added | "
             "C libbpf added | floor added | bpfsight/bpftrace | bpfsight/C |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, res in ov.items():
        added = {v: added_cost(res, v) for v in ("bpfsight", "bpftrace", "C", "floor")}
        cells = [f"{fmt(a)} ± {fmt(noise)}" for a, noise in added.values()]
        lines.append(f"| {name} | {res['unit']} | {fmt(median(res['ns']['bare']))} | "
                     + " | ".join(cells) +
                     f" | {ratio(added['bpfsight'], added['bpftrace'], GOALS['vs_bpftrace'])}"
                     f" | {ratio(added['bpfsight'], added['C'], GOALS['vs_c'])} |")
    lines += ["", "BPF ns per operation as the kernel times its programs (BPF stats on, a "
              "separate pass; the floor column is the timing itself around empty programs; "
              "bpftrace's classic tracepoints also pay a perf-buffer fill outside this figure):",
              "", "| workload | bpfsight | bpftrace | C libbpf | floor (empty) | "
              "bpfsight/bpftrace | bpfsight/C |", "|---|---|---|---|---|---|---|"]
    for name in ov:
        b, t, c, f = (costs.get((name, v), float("nan"))
                      for v in ("bpfsight", "bpftrace", "C", "floor"))
        lines.append(f"| {name} | {fmt(b)} | {fmt(t)} | {fmt(c)} | {fmt(f)} | {fmt(b / t, 2)}× | "
                     f"{fmt(b / c, 2)}× |")
    return lines


def ratio(a, b, goal):
    """a/b of two (added, noise) pairs, marked against the goal; "noise" when b or a is not
    clearly above its noise floor."""
    (a, a_noise), (b, b_noise) = a, b
    if a != a or b != b or b <= b_noise:
        return "n/a (noise)"
    r = max(a, 0) / b
    mark = "✓" if r <= goal else "✗"
    return f"{r:.2f}× {mark}" + (" (noisy)" if a <= a_noise else "")


def report_profile(pr):
    bare = median(pr["bare"]["ns"])
    lines = ["## Sampling at 99 Hz", "",
             "A CPU-bound loop on one CPU while the profiler samples every CPU at 99 Hz "
             "(kernel + user stacks). Cost = the loop's slowdown in CPU time + the profiler's "
             "own CPU "
             "(its BPF time is charged to the sampled tasks, shown apart). Goal: ≤ 1% CPU.", "",
             "| profiler | loop slowdown % | process CPU % of one CPU | BPF CPU % (all CPUs) |",
             "|---|---|---|---|"]
    for v in ("bpfsight", "bpftrace"):
        r = pr[v]
        slow = median([100 * (a - b) / b for a, b in zip(r["ns"], pr["bare"]["ns"])])
        lines.append(f"| {v} profile -F 99 | {fmt(slow, 2)} | {fmt(median(r['tool_cpu']), 2)} | "
                     f"{fmt(median(r['bpf_cpu']), 3)} |")
    q = statistics.quantiles(pr["bare"]["ns"], n=4) if len(pr["bare"]["ns"]) >= 2 else [0, 0, 0]
    noise = 100 * (q[2] - q[0]) / 2 / bare
    lines += ["", f"Noise: the bare loop's interquartile range is ±{fmt(noise, 2)}%."]
    return lines


def report_startup(st):
    lines = ["## Start-up to attached", "",
             f"ms from exec to the banner (bpfsight), BEGIN (bpftrace) or \"attached\" (C); "
             f"median. Goals: ≤ {GOALS['warm_ms']} ms warm, ≤ {GOALS['cold_ms']} ms cold "
             "(cold: page cache dropped before each run).", "",
             "| command | warm ms | cold ms | peak RSS MB |", "|---|---|---|---|"]
    for label, r in st.items():
        rss = fmt(max(r["rss"]) / 1024, 1) if r["rss"] else "–"
        lines.append(f"| {label} | {fmt(median(r['warm']))} | {fmt(median(r['cold']))} | {rss} |")
    return lines


def startup_every_tool(runs):
    """{tool: [warm ms]} for every tool in the registry that loads BPF programs, started with
    the arguments tests/test_cleanup.py gives it (one discarded run first)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import BANNER
    from test_cleanup import ARGS, TOOLS
    ready = re.compile(BANNER.pattern.encode(), BANNER.flags & re.MULTILINE)
    res = {}
    for name in TOOLS:
        argv = bpfsight(name, *ARGS.get(name, []))
        res[name] = [time_to_ready(argv, ready)[0] for _ in range(runs + 1)][1:]
    return res


def report_startup_every_tool(res):
    times = sorted(((median(ms), name) for name, ms in res.items()), reverse=True)
    over = [f"{name} {ms:.0f}" for ms, name in times if ms > GOALS["warm_ms"]]
    return ["### Every tool, warm", "",
            f"Median ms to attached of {len(times)} tools (the arguments of "
            "tests/test_cleanup.py): " + ", ".join(f"{n} {ms:.0f}" for ms, n in times) + ".",
            "", f"Over {GOALS['warm_ms']} ms: " + (", ".join(over) if over else "none") + "."]


def report_streaming(sr):
    lines = ["## Streaming", "",
             "The selftest producer (one 40-byte record per getppid() of the workload) read by "
             "a C consumer and by bpfsight's, both with 64 KiB watermark wakeups; median rates, "
             "worst drops. Goal: bpfsight delivers ≥ 1.0× C's rate with 0 drops.", "",
             "| target rate/s | consumer | produced/s | delivered/s | vs C | drops (worst) | "
             "lost | consumer CPU % |", "|---|---|---|---|---|---|---|---|"]
    c_rate = {rate: r["delivered_per_s"] for (rate, label), r in sr.items()
              if label.startswith("C")}
    for (rate, label), r in sr.items():
        vs_c = fmt(r["delivered_per_s"] / c_rate[rate], 2) + "×" if rate in c_rate else "–"
        lines.append(f"| {fmt(rate) if rate else 'max'} | {label} | {fmt(r['produced_per_s'])} | "
                     f"{fmt(r['delivered_per_s'])} | {vs_c} | {r['drops_max']} | "
                     f"{fmt(r['lost'])} | {fmt(r['cpu_pct'], 1)} |")
    return lines


def report_rss(ov):
    lines = ["## Peak RSS while tracing", "", f"VmHWM in MB, largest over rounds. "
             f"Goal: ≤ {GOALS['rss_mb']} MB for any bpfsight tool.", "",
             "| workload | bpfsight | bpftrace | C libbpf |", "|---|---|---|---|"]
    for name, res in ov.items():
        cells = [fmt(max(res["rss"].get(v, [float("nan")])) / 1024, 1)
                 for v in ("bpfsight", "bpftrace", "C")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def header(args, started, others):
    bt = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip()
    return ["# bpfsight benchmark", "",
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, Linux "
            f"{platform.release()}, {os.cpu_count()} CPUs, {bt}, Python "
            f"{platform.python_version()}; {args.rounds} rounds"
            f"{' (--quick)' if args.quick else ''}; workloads pinned to CPU {WORK_CPU}, "
            f"tracers to CPU {TOOL_CPU}. BPF links held by other processes at start: {others}; "
            f"load average {os.getloadavg()[0]:.1f} at start. "
            "Compare figures only within one run.", ""]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (~2 min)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per overhead figure")
    p.add_argument("--publish", action="store_true", help="also write bench/RESULTS.md")
    p.add_argument("--skip", action="append", default=[],
                   choices=["overhead", "profile", "startup", "streaming"],
                   help="leave a section out")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/run.py: needs root (it loads BPF programs)")
    args.rounds = args.rounds or (3 if args.quick else 11)
    scale = 0.5 if args.quick else 1.0
    started = time.time()
    build()
    lines = header(args, started, other_tracers())
    if "overhead" not in args.skip:
        log("per-event overhead ...")
        with loop_device() as dev:
            ov = overhead(dev, args.rounds, scale)
            costs = bpf_cost(dev, scale)
        lines += report_overhead(ov, costs) + [""] + report_rss(ov) + [""]
    if "profile" not in args.skip:
        log("sampling ...")
        lines += report_profile(profile_cost(args.rounds, scale)) + [""]
    if "startup" not in args.skip:
        log("start-up ...")
        lines += report_startup(startup(3 if args.quick else 5, 2 if args.quick else 3)) + [""]
        lines += report_startup_every_tool(startup_every_tool(2 if args.quick else 3)) + [""]
    if "streaming" not in args.skip:
        log("streaming ...")
        rates = [100_000, 300_000, 1_000_000, 0]
        lines += report_streaming(streaming(rates, 1 if args.quick else 3,
                                            0.25 if args.quick else 0.5)) + [""]
    lines.append(f"Total bench time: {time.time() - started:.0f} s; load average "
                 f"{os.getloadavg()[0]:.1f} at the end.")
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    if args.publish:  # the committed copy: this table, then the hand-written findings
        notes = BENCH / "NOTES.md"
        (BENCH / "RESULTS.md").write_text(text + ("\n" + notes.read_text() if notes.exists()
                                                  else ""))
    print(text)


if __name__ == "__main__":
    main()
