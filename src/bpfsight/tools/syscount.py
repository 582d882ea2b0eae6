"""syscount: count syscalls by name or by process, optionally with the time spent in them
(BCC's syscount)."""
from ..bpf.maps import PERCPU_HASH
from ..report.output import clock_hms
from ..syscalls import errno_arg, syscall_name, table
from ..taskstart import use_task_storage
from ..tool import (FOREVER, Option, StopSignal, Tool, disable_programs, flag, interval_loop,
                    output_for, positive_int)


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

    target = True
    options = (
        Option("-i", "--interval", type=positive_int("interval"),
               help="print summary at this interval (seconds)"),
        Option("-d", "--duration", type=positive_int("duration"),
               help="total duration of trace, in seconds"),
        Option("-T", "--top", type=positive_int("top"), default=10,
               help="print only the top syscalls by count or latency (default 10)"),
        flag("-x", "--failures", help="trace only failed syscalls"),
        Option("-e", "--errno", type=errno_arg,
               help="trace only syscalls that return this error (numeric or EPERM, etc.)"),
        flag("-L", "--latency", help="collect syscall latency"),
        flag("-m", "--milliseconds",
             help="display latency in milliseconds (default: microseconds)"),
        flag("-P", "--process", help="count by process and not by syscall"),
        flag("-l", "--list", help="print list of recognized syscalls and exit"))

    def banner_for(self, opts):
        return f"Tracing syscalls, printing top {opts.top}... Ctrl+C to quit."

    def configure(self, spec, opts):
        spec.set_globals(count_by_process=opts.process, measure_latency=opts.latency,
                         filter_failed=opts.failures, filter_errno=opts.errno or 0)
        if not opts.latency:  # counts at exit only: no entry timestamps
            disable_programs(spec, "syscount_enter", "syscount_enter_raw")
        if opts.process:
            count_by_process(spec)

    def sized(self, spec, opts):
        use_task_storage(spec, "syscount_exit")

    def collect(self, obj, opts):
        """Rows since the last call, busiest first (by total time with -L, as BCC sorts):
        {"count", "syscall", "nr"} or, with -P, {"count", "pid", "comm"}; "total_ns" with -L."""
        by = 2 if opts.latency else 1
        records = []
        for key, n, total_ns, comm in sorted(summarise(*obj.map("data").drain()),
                                             key=lambda r: r[by], reverse=True):
            rec = {"count": n}
            rec.update({"pid": key, "comm": comm} if opts.process
                       else {"syscall": syscall_name(key), "nr": key})
            if opts.latency:
                rec["total_ns"] = total_ns
            records.append(rec)
        return records

    def render(self, records, opts, out):
        if not records:
            return
        unit, div = ("ms", 1e6) if opts.milliseconds else ("us", 1e3)
        agg = "PID    COMM" if opts.process else "SYSCALL"
        out.text(f"[{clock_hms()}]")
        if opts.latency:
            out.text("%-22s %8s %16s" % (agg, "COUNT", f"TIME ({unit})"))
        else:
            out.text("%-22s %8s" % (agg, "COUNT"))
        for rec in records:
            label = "%-6u %-15s" % (rec["pid"], rec["comm"]) if opts.process else rec["syscall"]
            line = "%-22s %8d" % (label, rec["count"])
            if opts.latency:
                line += " %16.3f" % (rec["total_ns"] / div)
            out.text(line)
        out.text()

    def run(self, args):
        """The generic run, on syscount's own schedule (-i, -d) and with the top rows only."""
        if args.list:
            for name in sorted(set(table().values())):
                print(name)
            return 0
        out = output_for(args)
        spec = self.open(args)
        interval, count = schedule(args.interval, args.duration)
        with StopSignal() as stop, spec.load() as obj:
            self.attach(obj, args)
            out.banner(self.banner_for(args))

            def tick():
                records = self.collect(obj, args)[:args.top]
                self.render(records, args, out)
                for rec in records:
                    out.record({"tool": self.name, **rec})

            interval_loop(stop, interval, count, tick)
        return 0
