"""progs: every BPF program loaded on the host with its run rate, average cost and CPU share per
interval, like bpftop. The kernel counts runs and run time only while BPF run-time statistics
are on, so they are on (an fd held) for exactly as long as this command samples."""
import time

from ..bpf.hostprogs import programs
from ..bpf.info import RunTimeStats
from ..tool import StopSignal, Tool, add_output_args, interval_loop, output_for, positive_int
from ..report.output import clock_hms

HEADER = "%7s %-15s %-16s %10s %9s %7s %12s  %s"
ROW = "%7d %-15s %-16s %10.0f %9.0f %7.2f %12d  %s"


def rates(prev, cur, seconds):
    """Per-program figures of one interval: runs, runs/s, average ns per run, % of one CPU."""
    rows = []
    for p in cur:
        runs0, ns0 = prev.get(p.id, (0, 0))
        runs, ns = max(p.run_cnt - runs0, 0), max(p.run_time_ns - ns0, 0)
        rows.append({"id": p.id, "type": p.type, "name": p.name, "tag": p.tag,
                     "attach": p.attach, "run_cnt": p.run_cnt, "runs": runs,
                     "runs_per_s": runs / seconds, "avg_ns": ns / runs if runs else 0.0,
                     "cpu_pct": 100.0 * ns / (seconds * 1e9), "interval_s": round(seconds, 3)})
    rows.sort(key=lambda r: (-r["cpu_pct"], -r["runs"], r["id"]))
    return rows


class Progs(Tool):
    name = "progs"
    summary = "every BPF program loaded on the host with run count and cost"
    description = ("List every BPF program loaded on the host (ID, type, name, attach point) "
                   "with runs per second, average ns per run and CPU share per interval, like "
                   "bpftop. BPF run-time statistics are switched on while sampling (this adds "
                   "~20-50 ns to every program run) and off when it ends.")

    def add_arguments(self, p):
        p.add_argument("-i", "--interval", type=positive_int("interval"), default=1,
                       help="sampling interval, in seconds (default 1)")
        p.add_argument("-n", "--count", type=positive_int("count"),
                       help="number of intervals to print, then exit")
        p.add_argument("-r", "--rows", type=positive_int("rows"),
                       help="print at most this many programs per interval")
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        add_output_args(p)

    def run(self, args):
        out = output_for(args)
        with StopSignal() as stop, RunTimeStats():
            prev, since, self._intervals = self._sample(), time.monotonic(), 0
            out.banner(f"Sampling {len(prev)} BPF programs every {args.interval} s "
                       "(run-time stats on while sampling)... Hit Ctrl-C to end.")

            def tick():
                nonlocal prev, since
                cur, now = programs(), time.monotonic()
                self._render(out, args, rates(prev, cur, now - since))
                prev, since = {p.id: (p.run_cnt, p.run_time_ns) for p in cur}, now

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    @staticmethod
    def _sample():
        return {p.id: (p.run_cnt, p.run_time_ns) for p in programs()}

    def _render(self, out, args, rows):
        self._intervals += 1
        out.text()
        if args.timestamp:
            out.text(clock_hms())
        out.text(HEADER % ("ID", "TYPE", "NAME", "RUNS/s", "AVG ns", "CPU%", "TOTAL RUNS",
                           "ATTACH"))
        for r in rows[:args.rows]:
            out.text(ROW % (r["id"], r["type"][:15], r["name"], r["runs_per_s"], r["avg_ns"],
                            r["cpu_pct"], r["run_cnt"], ", ".join(r["attach"]) or "-"))
            out.record({"tool": self.name, "interval": self._intervals, **r})


class Bpflist(Progs):
    """BCC's bpflist lists once and exits: one interval unless -n asks for more."""
    name = "bpflist"
    summary = "BPF programs loaded on the host, listed once (BCC's name; progs samples on)"

    def add_arguments(self, p):
        super().add_arguments(p)
        p.set_defaults(count=1)
