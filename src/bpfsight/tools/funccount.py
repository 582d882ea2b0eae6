"""funccount: count calls of user functions and tracepoint hits, in the kernel (BCC's
funccount, without kernel functions: those need kprobes)."""
from .. import probespec
from ..tool import TIMESTAMP, Option, flag, positive_int
from ._probes import ProbeTool

PATTERN_HELP = ("t:CATEGORY:EVENT or CATEGORY:EVENT (tracepoints), [p:]LIB:FUNC (user "
                "functions; LIB a library name such as c, or a path); * and ? wildcards")


class Funccount(ProbeTool):
    name = "funccount"
    summary = "count user function calls and tracepoint hits matching a pattern"
    description = (
        "Count the calls of user functions (uprobes) and the hits of tracepoints that match a\n"
        "pattern (BCC's funccount), in the kernel: one counter per probe. Kernel functions\n"
        "(BCC's default kind) need kprobes, which this kernel lacks: the pattern then ends\n"
        "with that message. USDT probes: bpfsight usdt.\n"
        "  funccount 'c:malloc'            funccount -i 1 't:sched:sched_*'\n"
        "  funccount -r 'c:^str.*cmp$'     funccount -p 181 'pthread:pthread_mutex_*'")
    options = (
        Option("-i", "--interval", type=positive_int("interval"),
               help="summary interval, seconds"),
        Option("-d", "--duration", type=positive_int("duration"),
               help="total duration of trace, seconds"),
        TIMESTAMP,
        flag("-r", "--regexp", help="use regular expressions (default: * and ? wildcards)"),
        Option("pattern", help=PATTERN_HELP))

    def plan(self, opts):
        probes = probespec.expand(opts.pattern, opts.pid, bare_tracepoints=True,
                                  regex=opts.regexp)
        return [(p, {"mode": "count"}) for p in probes]

    def banner_for(self, opts):
        return f'Tracing {len(self._plan)} functions for "{opts.pattern}"... Hit Ctrl-C to end.'

    def report(self, obj, args, out, final):
        per_probe = {}
        for key, n in self.counts(obj, delete=True):
            per_probe[int(key["probe"])] = per_probe.get(int(key["probe"]), 0) + int(n)
        rows = sorted(((self.probes[i].label, n) for i, n in per_probe.items()),
                      key=lambda r: (r[1], r[0]))
        out.text()
        out.text("%-36s %8s" % ("FUNC", "COUNT"))
        for label, n in rows:
            out.text("%-36s %8d" % (label, n))
            out.record({"tool": self.name, "func": label, "count": n})
