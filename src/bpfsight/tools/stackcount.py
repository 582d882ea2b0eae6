"""stackcount: count the stacks that lead to user functions or tracepoints, in the kernel
(BCC's stackcount, without kernel functions: those need kprobes)."""
from .. import probespec
from ..profile.stacks import STACK_NONE, StackDecoder
from ..report.grouped import comm_of
from ..tool import TIMESTAMP, Option, flag, positive_int
from .funccount import PATTERN_HELP
from ._probes import ProbeTool


class Stackcount(ProbeTool):
    name = "stackcount"
    summary = "count the stacks leading to user functions or tracepoints"
    description = (
        "Count the distinct stacks (kernel and user) at each hit of the probes a pattern\n"
        "names (BCC's stackcount), in the kernel: a stack-trace map and a counter per stack.\n"
        "User stacks are walked with frame pointers: at a function's entry its direct caller\n"
        "is not seen (its return address is not yet in a frame), as in BCC. Kernel functions\n"
        "need kprobes, which this kernel lacks.\n"
        "  stackcount 't:sched:sched_switch'   stackcount -U -p 181 'c:malloc'")
    options = (
        Option("-i", "--interval", type=positive_int("interval"),
               help="summary interval, seconds"),
        Option("-D", "--duration", type=positive_int("duration"),
               help="total duration of trace, seconds"),
        TIMESTAMP,
        flag("-r", "--regexp", help="use regular expressions (default: * and ? wildcards)"),
        flag("-P", "--perpid", help="display stacks separately for each process"),
        flag("-K", "--kernel-stacks-only", help="kernel stack only", group="which"),
        flag("-U", "--user-stacks-only", help="user stack only", group="which"),
        flag("-d", "--delimited", help="insert delimiter between kernel/user stacks"),
        flag("-f", "--folded", help="output folded format"),
        Option("pattern", help=PATTERN_HELP))

    def plan(self, opts):
        probes = probespec.expand(opts.pattern, opts.pid, bare_tracepoints=True,
                                  regex=opts.regexp)
        user = not opts.kernel_stacks_only
        # user addresses are symbolised per process: counted per pid, merged at the report
        cfg = {"mode": "stack", "user_stack": int(user),
               "kernel_stack": int(not opts.user_stacks_only), "by_pid": int(user or opts.perpid)}
        return [(p, cfg) for p in probes]

    def banner_for(self, opts):
        return f'Tracing {len(self._plan)} functions for "{opts.pattern}"... Hit Ctrl-C to end.'

    def report(self, obj, args, out, final):
        rows = self.counts(obj, delete=True)
        decoder = StackDecoder(obj.map("stackmap"), self.symbolizer)
        reqs = {(int(k["pid"]), int(k["kernel_stack"]) if k["kernel_stack"] >= 0 else STACK_NONE,
                 int(k["user_stack"]) if k["user_stack"] >= 0 else STACK_NONE)
                for k, _ in rows}
        pairs = decoder.decode(list(reqs))
        merged = {}
        for k, n in rows:
            req = (int(k["pid"]), int(k["kernel_stack"]) if k["kernel_stack"] >= 0 else
                   STACK_NONE, int(k["user_stack"]) if k["user_stack"] >= 0 else STACK_NONE)
            pair = pairs[req]
            who = req[0] if args.perpid else None
            user = pair.user or (("[Missed User Stack]",) if req[2] != STACK_NONE or
                                 (not args.kernel_stacks_only and int(k["user_stack"]) < 0)
                                 else ())
            key = (self.probes[int(k["probe"])].label, who, pair.kernel, user)
            merged[key] = merged.get(key, 0) + int(n)
        if not args.folded:
            out.text()
        for (label, pid, kernel, user), n in sorted(merged.items(), key=lambda kv: kv[1]):
            out.record({"tool": self.name, "probe": label, "pid": pid,
                        "kernel_stack": list(kernel), "user_stack": list(user), "count": n})
            if args.folded:
                frames = list(reversed(user)) + (["-"] if args.delimited else []) + \
                    list(reversed(kernel))
                head = [comm_of(_comm(pid))] if pid else []
                out.text(";".join(head + frames or [label]) + f" {n}")
                continue
            for frame in kernel:
                out.text(f"  {frame}")
            if args.delimited and kernel and user:
                out.text("    --")
            for frame in user:
                out.text(f"  {frame}")
            if pid:
                out.text(f"    {_comm(pid)} [{pid}]")
            out.text(f"    {n}\n")


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"
