"""funcslower: calls of user functions slower than a threshold, with arguments and return
value (BCC's funcslower, for user functions: kernel functions need kprobes)."""
from .. import probespec
from ..errors import UsageError
from ..report.grouped import comm_of
from ..tool import Option, Tool, positive_int

HEADER = "%-14s %-7s %10s %16s %s"


class Funcslower(Tool):
    name = "funcslower"
    summary = "user function calls slower than a threshold, with arguments and return value"
    description = (
        "Print calls of user functions that took at least the threshold (BCC's funcslower):\n"
        "a uprobe keeps each call's entry time and first six arguments per thread, a\n"
        "uretprobe sends the slow ones. FUNCTION is [p:]LIB:FUNC or PATH:FUNC (wildcards\n"
        "allowed). Kernel functions need kprobes, which this kernel lacks.\n"
        "  funcslower -m 10 c:usleep         funcslower -a 2 -u 500 'pthread:pthread_mutex_*'")
    streams = target = True
    options = (
        Option("-m", "--min-ms", type=float, help="minimum duration to trace (ms), default 1",
               group="threshold"),
        Option("-u", "--min-us", type=float, help="minimum duration to trace (us)",
               group="threshold"),
        Option("-a", "--arguments", type=int, default=0, metavar="N",
               help="print this many of the function's first six arguments"),
        Option("--duration", type=positive_int("duration"), help="trace this many seconds"),
        Option("functions", nargs="+", metavar="function",
               help="[p:]LIB:FUNC or PATH:FUNC"))

    def configure(self, spec, opts):
        if not 0 <= opts.arguments <= 6:
            raise UsageError("-a: 0 to 6 arguments")
        ns = opts.min_us * 1e3 if opts.min_us is not None else (
            opts.min_ms if opts.min_ms is not None else 1) * 1e6
        if ns < 0:
            raise UsageError("the threshold must not be negative")
        self._probes = [p for f in opts.functions for p in probespec.expand(f, opts.pid)]
        if any(p.kind != "uprobe" for p in self._probes):
            raise UsageError("funcslower times user functions (LIB:FUNC); tracepoints have no "
                             "return to time")
        spec.set_globals(min_ns=int(ns), wakeup_bytes=1)  # slow calls: each shown at once

    def attach(self, obj, opts):
        for i, p in enumerate(self._probes):
            obj.attach_uprobe("funcslower_entry", p.binary, p.function, pid=opts.pid or -1,
                              cookie=i)
            obj.attach_uprobe("funcslower_return", p.binary, p.function, pid=opts.pid or -1,
                              retprobe=True, cookie=i)

    def banner_for(self, opts):
        return "Tracing function calls slower than %s... Ctrl+C to quit." % (
            f"{opts.min_us:g} us" if opts.min_us is not None else
            f"{opts.min_ms if opts.min_ms is not None else 1:g} ms")

    def header_for(self, opts):
        return HEADER % ("COMM", "PID", "LAT(us)", "RVAL", "FUNC") + (
            " ARGS" if opts.arguments else "")

    def decode(self, batch, dtype, opts):
        for r in batch:
            yield {"ts_ns": int(r["ts_ns"]), "pid": int(r["pid"]), "tid": int(r["tid"]),
                   "comm": comm_of(r["comm"]), "func": self._probes[int(r["func"])].label,
                   "lat_us": int(r["lat_ns"]) / 1e3, "retval": int(r["retval"]),
                   "args": [int(a) for a in r["args"][:opts.arguments]]}

    def render(self, records, opts, out):
        for e in records:
            args = " ".join("0x%x" % a for a in e["args"])
            out.text(HEADER % (e["comm"], e["pid"], "%.2f" % e["lat_us"], "%x" % e["retval"],
                               e["func"]) + (" " + args if args else ""))
