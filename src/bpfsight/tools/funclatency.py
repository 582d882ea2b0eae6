"""funclatency: time spent in one user-space function as a log2 histogram (BCC's funclatency,
uprobes only). Kernel functions need kprobes or fentry, which this project does not use: the
tracepoint tools (syscount -L, biolatency, runqlat, ...) cover kernel latency instead."""
import math

from ..binaries import resolve_binary
from ..errors import UsageError
from ..report.histogram import Log2Histogram, format_log2, hist_dtype
from ..tool import (StopSignal, Tool, add_output_args, add_target_args, interval_loop, open_spec,
                    output_for, positive_int, timestamp_line)

UNITS = {"nsecs": 1, "usecs": 1000, "msecs": 1000000}


def parse_pattern(pattern, pid=None):
    """'LIB:FUNC' or 'PATH:FUNC' -> (binary path, function name)."""
    where, sep, func = pattern.rpartition(":")
    if not sep or not where:
        raise UsageError(f"{pattern!r} names no library: kernel functions need kprobes, which "
                         "this kernel lacks; give LIB:FUNC or /path/to/binary:FUNC")
    if not func:
        raise UsageError(f"{pattern!r} names no function")
    return resolve_binary(where, pid), func


class Funclatency(Tool):
    name = "funclatency"
    summary = "latency histogram of a user function (uprobes)"
    description = ("Time a user-space function from entry to return as a histogram (uprobe + "
                   "uretprobe). PATTERN is LIB:FUNC (c:malloc, pthread:pthread_mutex_lock) or "
                   "PATH:FUNC. Kernel functions are not supported: they need kprobes/fentry.")

    def add_arguments(self, p):
        add_target_args(p, pid_help="trace this PID only")
        p.add_argument("-i", "--interval", type=positive_int("interval"),
                       help="summary interval, in seconds")
        p.add_argument("-d", "--duration", type=positive_int("duration"),
                       help="total duration of trace, in seconds")
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        units = p.add_mutually_exclusive_group()
        units.add_argument("-n", "--nanoseconds", dest="unit", action="store_const",
                           const="nsecs", help="nanosecond histogram (the default)")
        units.add_argument("-u", "--microseconds", dest="unit", action="store_const",
                           const="usecs", help="microsecond histogram")
        units.add_argument("-m", "--milliseconds", dest="unit", action="store_const",
                           const="msecs", help="millisecond histogram")
        add_output_args(p)
        p.add_argument("pattern", help="LIB:FUNC or PATH:FUNC, e.g. c:read")

    def run(self, args):
        unit = args.unit or "nsecs"
        binary, func = parse_pattern(args.pattern, args.pid)
        interval = args.interval or args.duration or 99999999
        count = math.ceil(args.duration / interval) if args.duration else None
        out = output_for(args)
        spec = open_spec("funclatency", args, self.name)
        spec.set_global("units_div", UNITS[unit])
        pid = args.pid or -1
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_uprobe("funclat_entry", binary, func, pid=pid)
            obj.attach_uprobe("funclat_return", binary, func, pid=pid, retprobe=True)
            hists = obj.map("hists", key="<u4", value=hist_dtype)
            out.banner(f'Tracing 1 functions for "{args.pattern}"... Hit Ctrl-C to end.')

            def tick():
                _, values = hists.read_all(delete=True)
                h = Log2Histogram([0] * 32, 0, unit, {"binary": binary, "function": func})
                for v in values:
                    h.merge(Log2Histogram.from_record(v, unit))
                out.text()
                timestamp_line(args, out)
                out.text(format_log2(h), end="")
                if h.count:
                    out.text(f"avg = {h.total // h.count} {unit}, total: {h.total} {unit}, "
                             f"count: {h.count}")
                out.record({"tool": self.name, **h.to_dict()})

            interval_loop(stop, interval, count, tick)
            out.text("Detaching...")
        return 0
