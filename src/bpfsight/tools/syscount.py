"""syscount: count syscalls by name or by process, optionally with the time spent in them
(BCC's syscount)."""
from ..bpf.maps import PERCPU_HASH
from ..report.output import clock_hms
from ..syscalls import errno_arg, syscall_name, table
from ..taskstart import use_task_storage
from ..tool import (StopSignal, Tool, add_output_args, add_target_args,
                    disable_programs, interval_loop, open_spec, output_for, positive_int,
                    select_hooks)

FOREVER = 99999999


def stat_dtype():
    """struct syscall_stat (bpf/syscount.bpf.c): one CPU's slot of the per-CPU hash."""
    import numpy as np
    return np.dtype([("count", "<u8"), ("total_ns", "<u8"), ("comm", "S16")])


def schedule(interval, duration):
    """(seconds between outputs, number of outputs or None for 'until Ctrl-C') for -i and -d:
    with neither, one summary at Ctrl-C; with -d alone, one summary at the end."""
    if interval and duration:
        return interval, max(1, -(-duration // interval))  # ceil, integers (no math import)
    if duration:
        return duration, 1
    return interval or FOREVER, None


def summarise(keys, values):
    """[(key, count, total_ns, comm)] summed over CPUs from a per-CPU read, leaving out
    syscalls never made (by syscall, the map is an array with a slot for every number)."""
    rows = []
    counts = values["count"].sum(axis=1)
    totals = values["total_ns"].sum(axis=1)
    for i in counts.nonzero()[0].tolist():
        comm = next((c for c in values[i]["comm"] if c), b"")
        rows.append((int(keys[i]), int(counts[i]), int(totals[i]), comm.decode(errors="replace")))
    return rows


def count_by_process(spec):
    """-P: the per-syscall array becomes a per-CPU hash keyed by pid."""
    spec.maps["data"].reshape(PERCPU_HASH, 10240)


class Syscount(Tool):
    name = "syscount"
    summary = "count syscalls by name or process, with latency"
    description = ("Summarize syscall counts and latencies (BCC's syscount), from the "
                   "raw_syscalls sys_enter/sys_exit tracepoints.\n"
                   "Syscall numbers are named from a built-in x86_64/arm64 table (up to Linux "
                   "6.18, extended from this machine's uapi headers); unknown numbers print as "
                   "[NR]. bpfsight's own syscalls are not counted.")

    def add_arguments(self, p):
        add_target_args(p, pid_help="process PID to trace")
        p.add_argument("-i", "--interval", type=positive_int("interval"),
                       help="print summary at this interval (seconds)")
        p.add_argument("-d", "--duration", type=positive_int("duration"),
                       help="total duration of trace, in seconds")
        p.add_argument("-T", "--top", type=positive_int("top"), default=10,
                       help="print only the top syscalls by count or latency (default 10)")
        p.add_argument("-x", "--failures", action="store_true", help="trace only failed syscalls")
        p.add_argument("-e", "--errno", type=errno_arg,
                       help="trace only syscalls that return this error (numeric or EPERM, etc.)")
        p.add_argument("-L", "--latency", action="store_true", help="collect syscall latency")
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="display latency in milliseconds (default: microseconds)")
        p.add_argument("-P", "--process", action="store_true",
                       help="count by process and not by syscall")
        p.add_argument("-l", "--list", action="store_true",
                       help="print list of recognized syscalls and exit")
        add_output_args(p)

    def run(self, args):
        if args.list:
            for name in sorted(set(table().values())):
                print(name)
            return 0
        out = output_for(args)
        spec = open_spec("syscount", args, self.name)
        spec.set_globals(count_by_process=args.process, measure_latency=args.latency,
                         filter_failed=args.failures, filter_errno=args.errno or 0)
        if not args.latency:
            disable_programs(spec, "syscount_enter", "syscount_enter_raw")
        if args.process:
            count_by_process(spec)
        select_hooks(spec, self.name)
        use_task_storage(spec, "syscount_exit")
        interval, count = schedule(args.interval, args.duration)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            out.banner(f"Tracing syscalls, printing top {args.top}... Ctrl+C to quit.")
            data = obj.map("data", key="<u4", value=stat_dtype)
            interval_loop(stop, interval, count,
                          lambda: self.report(summarise(*data.drain()), args, out))
        return 0

    def report(self, rows, args, out):
        if not rows:
            return
        by = 2 if args.latency else 1  # sort by total time with -L, as BCC does
        rows = sorted(rows, key=lambda r: r[by], reverse=True)[:args.top]
        unit, div = ("ms", 1e6) if args.milliseconds else ("us", 1e3)
        agg = "PID    COMM" if args.process else "SYSCALL"
        out.text(f"[{clock_hms()}]")
        if args.latency:
            out.text("%-22s %8s %16s" % (agg, "COUNT", f"TIME ({unit})"))
        else:
            out.text("%-22s %8s" % (agg, "COUNT"))
        for key, n, total_ns, comm in rows:
            label = "%-6u %-15s" % (key, comm) if args.process else syscall_name(key)
            line = "%-22s %8d" % (label, n)
            if args.latency:
                line += " %16.3f" % (total_ns / div)
            out.text(line)
            rec = {"tool": self.name, "count": n}
            rec.update({"pid": key, "comm": comm} if args.process
                       else {"syscall": syscall_name(key), "nr": key})
            if args.latency:
                rec["total_ns"] = total_ns
            out.record(rec)
        out.text()
