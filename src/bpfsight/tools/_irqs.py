"""What hardirqs and softirqs share (bpf/include/irqstat.bpf.h): options, loading the right
program pair, and BCC's two output shapes: a table of totals, or one histogram per key."""
import argparse

from ..bpf.links import online_cpus
from ..errors import UsageError
from ..report.histogram import Log2Histogram, format_log2, hist_dtype
from ..tool import (StopSignal, add_interval_args, add_output_args, disable_programs,
                    interval_loop, open_spec, output_for, select_hooks, timestamp_line)


def irq_stat_dtype():
    """struct irq_stat: one CPU's slot of the per-CPU stats hash."""
    import numpy as np
    return np.dtype([("count", "<u8"), ("total_ns", "<u8"), ("hist", hist_dtype())])


def cpu_number(text):
    try:
        cpu = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid CPU {text!r}: expected a number") from None
    if cpu not in online_cpus():
        raise argparse.ArgumentTypeError(f"CPU {cpu} is not online")
    return cpu


def add_irq_arguments(p, count_flag, count_help):
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", count_flag, dest="count_mode", action="store_true", help=count_help)
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=cpu_number, help="trace this CPU only")
    add_output_args(p)
    add_interval_args(p)


def open_irq_spec(tool, args):
    """The tool's object with -C's entry-only program, or the timed entry/exit pair."""
    if args.count_mode and (args.dist or args.nanoseconds):
        raise UsageError(f"the {args.count_flag} option can't be used with time-based options")
    spec = open_spec(tool, None, tool)
    spec.set_globals(targ_dist=args.dist, targ_ns=args.nanoseconds,
                     targ_cpu=-1 if args.cpu is None else args.cpu)
    timed = [f"{tool}_{p}{raw}" for p in ("entry", "exit") for raw in ("", "_raw")]
    counted = [f"{tool}_count{raw}" for raw in ("", "_raw")]
    disable_programs(spec, *(timed if args.count_mode else counted))
    return select_hooks(spec, tool)


def summed(keys, values, name_of):
    """[(name, count, total_ns, Log2Histogram record)] with the per-CPU slots added up."""
    import numpy as np
    rows = []
    for key, per_cpu in zip(keys, values):
        hist = np.zeros((), dtype=hist_dtype())
        hist["slots"] = per_cpu["hist"]["slots"].sum(axis=0)
        hist["total"] = per_cpu["hist"]["total"].sum()
        rows.append((name_of(key), int(per_cpu["count"].sum()),
                     int(per_cpu["total_ns"].sum()), hist))
    return rows


def run_irq_tool(tool, args, key_dtype, name_of, column, width, what):
    """Load, attach, and print every interval: `column` heads the table (HARDIRQ), `what`
    labels histograms and JSON records (hardirq)."""
    out = output_for(args)
    spec = open_irq_spec(tool, args)
    unit = "nsecs" if args.nanoseconds else "usecs"
    with StopSignal() as stop, spec.load() as obj:
        obj.attach_all()
        stats = obj.map("stats", key=key_dtype, value=irq_stat_dtype)
        kind = "hard irq" if what == "hardirq" else "soft irq"
        out.banner(f"Tracing {kind} event{'s' if args.count_mode else ' time'}... "
                   "Hit Ctrl-C to end.")

        def tick():
            rows = summed(*stats.read_all(delete=True), name_of)
            out.text()
            timestamp_line(args, out)
            if args.dist:
                print_hists(out, tool, what, rows, unit)
            else:
                print_totals(out, tool, args, rows, column, width, what, unit)

        interval_loop(stop, args.interval, args.count, tick)
    return 0


def print_totals(out, tool, args, rows, column, width, what, unit):
    label = "count" if args.count_mode else unit
    out.text("%-*s %11s" % (width, column, "TOTAL_" + label))
    value = (lambda r: r[1]) if args.count_mode else (
        (lambda r: r[2]) if args.nanoseconds else (lambda r: r[2] // 1000))
    for row in sorted(rows, key=value):  # ascending, the busiest last, as BCC prints
        out.text("%-*s %11d" % (width, row[0], value(row)))
        rec = {"tool": tool, what: row[0], "count": row[1]}
        if not args.count_mode:
            rec["total_ns"] = row[2]
        out.record(rec)


def print_hists(out, tool, what, rows, unit):
    for name, count, total_ns, hist in sorted(rows, key=lambda r: r[0]):
        h = Log2Histogram.from_record(hist, unit, **{what: name})
        out.text(f"{what} = {name}")
        out.text(format_log2(h))
        out.record({"tool": tool, **h.to_dict(), "total_ns": total_ns})
