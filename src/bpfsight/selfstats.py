"""`--stats`: what running a tool cost, printed to stderr at exit (and after each interval with
-T): per BPF program its run count, average ns per run and CPU share; ring-buffer records and
drops; bpfsight's own user/system CPU and peak RSS. The kernel times programs only while BPF
run-time statistics are on, so they are switched on for the run and restored afterwards;
timing itself adds some 20-50 ns per run, included in the figures."""
import json
import os
import resource
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
        self._started = time.monotonic()
        self._last = {}  # (object, program) -> (run_cnt, run_time_ns) at the last interval

    def __enter__(self):
        global _active
        try:
            self._stats.__enter__()
        except OSError as exc:
            raise NotSupportedError("bpf_stats", f"--stats needs BPF_ENABLE_STATS: {exc.strerror}")
        self._collector = info.start_collecting()
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
            info.stop_collecting()
            self._stats.__exit__(exc_type, exc, tb)

    def interval(self):
        if self.per_interval:
            self.emit(final=False)

    def emit(self, final):
        report = self.report(since_last=not final)
        if self.json:
            self.stream.write(json.dumps({"tool": self.tool, "stats": report},
                                         separators=(",", ":")) + "\n")
        else:
            self.stream.write(format_report(self.tool, report, final))
        self.stream.flush()

    def report(self, since_last=False):
        """Plain data: {"seconds", "programs": [...], "rings": [...], "process": {...}}."""
        seconds = time.monotonic() - self._started
        progs = []
        for s in self._collector.programs():
            key = (s.object, s.program)
            runs, ns = s.info.run_cnt, s.info.run_time_ns
            if since_last:
                last_runs, last_ns = self._last.get(key, (0, 0))
                self._last[key] = (runs, ns)
                runs, ns = runs - last_runs, ns - last_ns
            progs.append({"object": s.object, "program": s.program, "id": s.info.id,
                          "runs": runs, "run_time_ns": ns,
                          "avg_ns": round(ns / runs) if runs else 0,
                          "recursion_misses": s.info.recursion_misses})
        wall = seconds if not since_last else self._interval_seconds()
        total_ns = sum(p["run_time_ns"] for p in progs)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "seconds": round(wall, 3),
            "programs": progs,
            "bpf_cpu_pct": round(100 * total_ns / (wall * 1e9), 3) if wall > 0 else 0.0,
            "rings": [{"name": r.name, "records": r.records, "drops": r.drops}
                      for r in self._collector.rings()],
            "process": {"user_s": round(usage.ru_utime, 3), "system_s": round(usage.ru_stime, 3),
                        "cpu_pct": round(100 * (usage.ru_utime + usage.ru_stime) / seconds, 2)
                        if seconds > 0 else 0.0,
                        "max_rss_kb": usage.ru_maxrss},
            "cpus": os.cpu_count(),
        }

    def _interval_seconds(self):
        now = time.monotonic()
        last, self._interval_mark = getattr(self, "_interval_mark", self._started), now
        return now - last


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
    p = r["process"]
    lines.append(f"  bpfsight process: user {p['user_s']:.2f} s, system {p['system_s']:.2f} s "
                 f"({p['cpu_pct']:.1f}% of one CPU since start), max RSS {p['max_rss_kb'] // 1024} MB")
    return "\n".join(lines) + "\n"


def after_interval():
    """Called by interval_loop after each interval's output."""
    if _active is not None:
        _active.interval()
