"""argdist: histograms (-H) and frequency counts (-C) of a function argument, return value or
tracepoint field, aggregated in the kernel (BCC's argdist, without kernel functions)."""
import re
import time

from .. import probespec
from ..errors import UsageError
from ..report.histogram import Log2Histogram, format_log2
from ..tool import Option, positive_int
from ._probes import ProbeTool

SPECIFIER = re.compile(r"^([prt]):([^:]*):(\w+)\(([^)]*)\)(?::([^:#]+):([^:#]+)(?::([^#]+))?)?"
                       r"(?:#(.+))?$")


class Specifier:
    """{p,r,t}:{library,category}:function(signature)[:type:expr[:filter]][#label]"""

    def __init__(self, text, histogram, pid):
        m = SPECIFIER.match(text.strip())
        if not m:
            raise UsageError(f"cannot parse specifier {text!r}: expected {self.__doc__}")
        kind, where, func, signature, vtype, expr, flt, label = m.groups()
        if kind == "p" and not where:
            raise UsageError(f"{text!r}: {probespec.KPROBE_MESSAGE}")
        (self.probe,) = probespec.expand(f"{kind}:{where}:{func}", pid, returns=True)
        params = [p.strip().split()[-1].lstrip("*") for p in signature.split(",") if p.strip()]
        if expr and "," in expr:
            raise UsageError(f"{text!r}: one expression per specifier here")
        if expr in ("$latency", "$entry"):
            raise UsageError(f"{text!r}: {expr} is not supported; funclatency times a function")
        self.text, self.histogram = text.strip(), histogram
        self.expr = (expr or "").replace("$retval", "retval")
        self.label = label or (self.expr or "total calls")
        self.cfg = {"mode": "hist" if histogram else "freq"}
        if self.expr:
            self.cfg["value"] = probespec.source(self.probe, self.expr, params)
        elif histogram:
            raise UsageError(f"{text!r}: a histogram needs an expression")
        if flt:
            self.cfg["filter"] = probespec.parse_filter(self.probe, flt, params)
        self.vtype = vtype


class Argdist(ProbeTool):
    name = "argdist"
    summary = "histograms and frequency counts of function arguments and tracepoint fields"
    description = (
        "Collect a histogram (-H) or a count per value (-C) of one argument (argN or a name\n"
        "the signature declares), return value ($retval) or tracepoint field (args->FIELD)\n"
        "per specifier, aggregated in the kernel (BCC's argdist). The optional filter is\n"
        "SOURCE OP NUMBER, evaluated in the kernel. Kernel functions need kprobes, which this\n"
        "kernel lacks.\n"
        "  argdist -H 'p:c:malloc(size_t size):size_t:size'\n"
        "  argdist -C 'r:c:read():ssize_t:$retval' -C 't:syscalls:sys_enter_openat():int:args->flags'")
    options = (
        Option("-i", "--interval", type=positive_int("interval"), default=1,
               help="output interval, in seconds (default 1)"),
        Option("-d", "--duration", type=positive_int("duration"),
               help="total duration of trace, in seconds"),
        Option("-n", "--number", type=positive_int("number"),
               help="number of outputs"),
        Option("-T", "--top", type=positive_int("top"),
               help="number of top results to show (not applicable to histograms)"),
        Option("-H", "--histogram", action="append", default=[], dest="histspecifier",
               metavar="specifier", help="probe specifier to capture histogram of"),
        Option("-C", "--count", action="append", default=[], dest="countspecifier",
               metavar="specifier", help="probe specifier to capture count of"))

    def plan(self, opts):
        if not opts.histspecifier and not opts.countspecifier:
            raise UsageError("give at least one -H or -C specifier")
        self._specs = [Specifier(t, True, opts.pid) for t in opts.histspecifier] + \
            [Specifier(t, False, opts.pid) for t in opts.countspecifier]
        self._reports = 0
        return [(s.probe, s.cfg) for s in self._specs]

    def banner_for(self, opts):
        return "[%s]\nTracing... Hit Ctrl-C to end." % time.strftime("%H:%M:%S")

    def run(self, args):
        args.timestamp = False
        if args.number and args.duration is None:
            args.duration = args.interval * args.number
        return super().run(args)

    def report(self, obj, args, out, final):
        per = {}
        for key, n in self.counts(obj, delete=False):
            per.setdefault(int(key["probe"]), {})[int(key["value"])] = int(n)
        out.text("[%s]" % time.strftime("%H:%M:%S"))
        for i, spec in enumerate(self._specs):
            values = per.get(i, {})
            out.text(f"{'hist' if spec.histogram else 'freq'}: {spec.text}")
            if spec.histogram:
                self._histogram(spec, values, out)
            else:
                self._counts(spec, values, args, out)

    def _histogram(self, spec, slots_by_bits, out):
        slots = [0] * 65
        for bits, n in slots_by_bits.items():
            slots[min(bits, 64)] += n
        # bit length b holds [2^(b-1), 2^b - 1]; BCC's slot 0 holds 0 and 1
        log2 = [slots[0] + slots[1]] + slots[2:]
        hist = Log2Histogram(log2, unit=spec.label[:19])
        out.text(format_log2(hist) or "\t(no events)")
        out.record({"tool": self.name, "specifier": spec.text, **hist.to_dict()})

    def _counts(self, spec, values, args, out):
        rows = sorted(values.items(), key=lambda kv: kv[1])
        if args.top:
            rows = rows[-args.top:]
        out.text("\t%-10s %s" % ("COUNT", "EVENT"))
        for value, n in rows:
            shown = _signed(value) if spec.expr else "total"
            out.text("\t%-10d %s = %s" % (n, spec.label, shown))
            out.record({"tool": self.name, "specifier": spec.text, "value": shown, "count": n})


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v
