"""`--stats`: what running a tool cost, printed to stderr at exit (and after each interval with
-T): per BPF program its run count, average ns per run and CPU share; ring-buffer records and
drops; map-full events; bpfsight's own user/system CPU and peak RSS. The kernel times programs
only while BPF run-time statistics are on, so they are switched on for the run and off again
after it; timing itself adds some 20-50 ns per run, included in the figures."""
import os
import sys
import time

from .bpf import info
from .bpf.errors import NotSupportedError

_active = None  # the SelfStats of this run, for interval_loop


class SelfStats:
    def __init__(self, tool, json_mode=False, per_interval=False, stream=None):
        self.tool = tool
        self.json = json_mode
        self.per_interval = per_interval
        self.stream = stream or sys.stderr
        self._stats = info.RunTimeStats()
        self._started = self._mark = time.monotonic()  # _mark: the last report
        self._last = {}  # (object, program) -> (run_cnt, run_time_ns) at the last interval

    def __enter__(self):
        global _active
        try:
            self._stats.__enter__()
        except OSError as exc:
            raise NotSupportedError("bpf_stats", f"--stats needs BPF_ENABLE_STATS: {exc.strerror}")
        self._collector = info.observe(info.Collector())
        _active = self
        return self

    def __exit__(self, exc_type, exc, tb):
        global _active
        _active = None
        try:
            # a failed run keeps its one error line; an interrupted one still reports
            if exc_type is None or issubclass(exc_type, (KeyboardInterrupt, BrokenPipeError)):
                self.emit(final=True)
        finally:
            info.unobserve(self._collector)
            self._stats.__exit__(exc_type, exc, tb)

    def interval(self):
        if self.per_interval:
            self.emit(final=False)

    def emit(self, final):
        report = self.report(since_last=not final)
        if self.json:
            import json
            self.stream.write(json.dumps({"tool": self.tool, "stats": report},
                                         separators=(",", ":")) + "\n")
        else:
            self.stream.write(format_report(self.tool, report, final))
        self.stream.flush()

    def report(self, since_last=False):
        """Plain data: {"seconds", "programs", "bpf_cpu_pct", "rings", "map_full", "process",
        "cpus"}; with since_last, program figures and seconds cover only the last interval."""
        now = time.monotonic()
        wall = now - (self._mark if since_last else self._started)
        self._mark = now
        progs = [self._program(s, since_last) for s in self._collector.programs()]
        total_ns = sum(p["run_time_ns"] for p in progs)
        return {
            "seconds": round(wall, 3),
            "programs": progs,
            "bpf_cpu_pct": round(100 * total_ns / (wall * 1e9), 3) if wall > 0 else 0.0,
            "rings": [{"name": r.name, "records": r.records, "drops": r.drops}
                      for r in self._collector.rings()],
            "map_full": sum(self._collector.map_full().values()),
            "process": self._process(now - self._started),
            "cpus": os.cpu_count(),
        }

    def _program(self, sample, since_last):
        info_ = sample.info
        runs, ns = info_.run_cnt, info_.run_time_ns
        if since_last:
            key = (sample.object, sample.program)
            last_runs, last_ns = self._last.get(key, (0, 0))
            self._last[key] = (runs, ns)
            runs, ns = runs - last_runs, ns - last_ns
        return {"object": sample.object, "program": sample.program, "id": info_.id,
                "runs": runs, "run_time_ns": ns, "avg_ns": round(ns / runs) if runs else 0,
                "recursion_misses": info_.recursion_misses}

    @staticmethod
    def _process(seconds):
        import resource  # here, not at the top: tool.py imports this module on every start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        return {"user_s": round(usage.ru_utime, 3), "system_s": round(usage.ru_stime, 3),
                "cpu_pct": round(100 * cpu / seconds, 2) if seconds > 0 else 0.0,
                "max_rss_kb": usage.ru_maxrss}


def format_report(tool, r, final):
    when = "at exit" if final else "this interval"
    lines = [f"bpfsight {tool} --stats ({when}, {r['seconds']:.2f} s; BPF timing adds "
             "~20-50 ns per run):",
             "  %-28s %12s %10s %10s" % ("PROGRAM", "RUNS", "AVG ns", "TOTAL ms")]
    for p in r["programs"]:
        lines.append("  %-28s %12d %10d %10.2f" % (p["program"], p["runs"], p["avg_ns"],
                                                  p["run_time_ns"] / 1e6))
    lines.append(f"  BPF CPU: {r['bpf_cpu_pct']:.3f}% of one CPU ({r['cpus']} CPUs)")
    for ring in r["rings"]:
        lines.append(f"  ring buffer {ring['name']}: {ring['records']} records read, "
                     f"{ring['drops']} dropped")
    lines.append(f"  map-full events (samples lost to a full map): {r['map_full']}")
    p = r["process"]
    lines.append(f"  bpfsight process: user {p['user_s']:.2f} s, system {p['system_s']:.2f} s "
                 f"({p['cpu_pct']:.1f}% of one CPU since start), "
                 f"max RSS {p['max_rss_kb'] // 1024} MB")
    return "\n".join(lines) + "\n"


def after_interval():
    """Called by interval_loop after each interval's output."""
    if _active is not None:
        _active.interval()
