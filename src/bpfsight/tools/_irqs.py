"""What hardirqs and softirqs share (bpf/include/irqstat.bpf.h): options, the right program
pair, and BCC's two output shapes: a table of totals, or one histogram per key."""
import argparse

from ..bpf.links import online_cpus
from ..errors import UsageError
from ..report.histogram import Log2Histogram, format_log2
from ..tool import TIMESTAMP, Option, Tool, disable_programs, flag


def cpu_number(text):
    try:
        cpu = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid CPU {text!r}: expected a number") from None
    if cpu not in online_cpus():
        raise argparse.ArgumentTypeError(f"CPU {cpu} is not online")
    return cpu


def irq_options(count_flag, count_help):
    return (TIMESTAMP,
            flag("-N", "--nanoseconds", help="output in nanoseconds"),
            flag("-C", count_flag, dest="count_mode", help=count_help),
            flag("-d", "--dist", help="show distributions as histograms"),
            Option("-c", "--cpu", type=cpu_number, help="trace this CPU only"))


class IrqTool(Tool):
    """hardirqs and softirqs: a subclass declares irq_options(its count flag), its table
    column and width, what a record calls the key (hardirq, softirq) and name_of(key)."""
    intervals = True
    column = what = ""
    width = 16

    def banner_for(self, opts):
        kind = "hard irq" if self.what == "hardirq" else "soft irq"
        return f"Tracing {kind} event{'s' if opts.count_mode else ' time'}... Hit Ctrl-C to end."

    def configure(self, spec, opts):
        """-C's entry-only program, or the timed entry/exit pair."""
        if opts.count_mode and (opts.dist or opts.nanoseconds):
            count_flag = next(o.flags[1] for o in self.options if o.dest == "count_mode")
            raise UsageError(f"the {count_flag} option can't be used with time-based options")
        spec.set_globals(targ_dist=opts.dist, targ_ns=opts.nanoseconds,
                         targ_cpu=-1 if opts.cpu is None else opts.cpu)
        timed = [f"{self.name}_{p}{raw}" for p in ("entry", "exit") for raw in ("", "_raw")]
        counted = [f"{self.name}_count{raw}" for raw in ("", "_raw")]
        disable_programs(spec, *(timed if opts.count_mode else counted))

    def collect(self, obj, opts):
        """With -d, a Log2Histogram per key (labelled {what: name}, total_ns beside); else
        {what: name, "count"[, "total_ns"]} per key, ascending, the busiest last (as BCC
        prints)."""
        rows = summed(*obj.map("stats").read_all(delete=True), self.name_of)
        unit = "nsecs" if opts.nanoseconds else "usecs"
        if opts.dist:
            return [Log2Histogram.from_record(hist, unit, **{self.what: name})
                    .with_extra(total_ns=total_ns)
                    for name, count, total_ns, hist in sorted(rows, key=lambda r: r[0])]
        value = (lambda r: r[1]) if opts.count_mode else (lambda r: r[2])
        records = []
        for name, count, total_ns, _ in sorted(rows, key=value):
            rec = {self.what: name, "count": count}
            if not opts.count_mode:
                rec["total_ns"] = total_ns
            records.append(rec)
        return records

    def render(self, records, opts, out):
        if opts.dist:
            for h in records:
                out.text(f"{self.what} = {h.labels[self.what]}")
                out.text(format_log2(h))
            return
        unit = "nsecs" if opts.nanoseconds else "usecs"
        out.text("%-*s %11s" % (self.width, self.column,
                                "TOTAL_" + ("count" if opts.count_mode else unit)))
        for rec in records:
            value = rec["count"] if opts.count_mode else (
                rec["total_ns"] if opts.nanoseconds else rec["total_ns"] // 1000)
            out.text("%-*s %11d" % (self.width, rec[self.what], value))


def summed(keys, values, name_of):
    """[(name, count, total_ns, {"slots", "total"} for Log2Histogram.from_record)], the per-CPU
    slots added up."""
    rows = []
    for key, per_cpu in zip(keys, values):
        hist = {"slots": per_cpu["hist"]["slots"].sum(axis=0),
                "total": per_cpu["hist"]["total"].sum()}
        rows.append((name_of(key), int(per_cpu["count"].sum()),
                     int(per_cpu["total_ns"].sum()), hist))
    return rows
