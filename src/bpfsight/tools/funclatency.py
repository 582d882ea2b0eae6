"""funclatency: time spent in one user-space function as a log2 histogram (BCC's funclatency,
uprobes only). Kernel functions need kprobes or fentry, which this project does not use: the
tracepoint tools (syscount -L, biolatency, runqlat, ...) cover kernel latency instead."""
import math

from ..binaries import resolve_binary
from ..errors import UsageError
from ..report.histogram import Log2Histogram, format_log2
from ..tool import FOREVER, TIMESTAMP, Option, Tool, output_for, positive_int

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

    target = True
    options = (
        Option("-i", "--interval", type=positive_int("interval"),
               help="summary interval, in seconds"),
        Option("-d", "--duration", type=positive_int("duration"),
               help="total duration of trace, in seconds"),
        TIMESTAMP,
        Option("-n", "--nanoseconds", dest="unit", action="store_const", const="nsecs",
               group="unit", help="nanosecond histogram (the default)"),
        Option("-u", "--microseconds", dest="unit", action="store_const", const="usecs",
               group="unit", help="microsecond histogram"),
        Option("-m", "--milliseconds", dest="unit", action="store_const", const="msecs",
               group="unit", help="millisecond histogram"),
        Option("pattern", help="LIB:FUNC or PATH:FUNC, e.g. c:read"))

    def banner_for(self, opts):
        return f'Tracing 1 functions for "{opts.pattern}"... Hit Ctrl-C to end.'

    def configure(self, spec, opts):
        self._target = parse_pattern(opts.pattern, opts.pid)
        spec.set_global("units_div", UNITS[opts.unit or "nsecs"])

    def attach(self, obj, opts):
        binary, func = self._target
        pid = opts.pid or -1
        obj.attach_uprobe("funclat_entry", binary, func, pid=pid)
        obj.attach_uprobe("funclat_return", binary, func, pid=pid, retprobe=True)

    def collect(self, obj, opts):
        """One Log2Histogram since the last call, labelled binary and function."""
        unit = opts.unit or "nsecs"
        binary, func = self._target
        _, values = obj.map("hists").read_all(delete=True)
        h = Log2Histogram([0] * 32, 0, unit, {"binary": binary, "function": func})
        for v in values:
            h.merge(Log2Histogram.from_record(v, unit))
        return [h]

    def render(self, hists, opts, out):
        for h in hists:
            out.text(format_log2(h), end="")
            if h.count:
                out.text(f"avg = {h.total // h.count} {h.unit}, total: {h.total} {h.unit}, "
                         f"count: {h.count}")

    def run(self, args):
        """The generic run on funclatency's own schedule (-i, -d)."""
        args.interval = args.interval or args.duration or FOREVER
        args.count = math.ceil(args.duration / args.interval) if args.duration else None
        super().run(args)
        output_for(args).text("Detaching...")
        return 0
