"""trace: print a line per hit of user functions and tracepoints, with a format of their
arguments (BCC's trace, without kernel functions: those need kprobes)."""
import re
import time

from .. import probespec
from ..errors import UsageError
from ..profile.stacks import STACK_NONE, StackDecoder
from ..profile.symbols import Symbolizer
from ..report.grouped import comm_of
from ..tool import Option, flag, positive_int
from ._probes import ProbeTool

# printf conversions -> (Python conversion, how the value is taken)
CONVERSION = re.compile(r"%(-?\d*)(ll|l|z|h|hh)?([diuxXscp%])")


class Printf:
    """A probe's C format and its argument sources: values from the event record, strings
    copied by the kernel (at most two per probe)."""

    def __init__(self, probe, fmt, exprs):
        self.fmt, self.kinds, self.sources, self.strings = fmt, [], [], []
        convs = [m for m in CONVERSION.finditer(fmt) if m.group(3) != "%"]
        if len(convs) != len(exprs):
            raise UsageError(f"format {fmt!r} has {len(convs)} conversions for {len(exprs)} "
                             "arguments")
        for m, expr in zip(convs, exprs):
            src = probespec.source(probe, expr)
            if m.group(3) == "s":
                if len(self.strings) == 2:
                    raise UsageError(f"{probe.label}: at most two %s arguments")
                self.strings.append(src)
            self.kinds.append(m.group(3))
            self.sources.append(src)
        self.python = CONVERSION.sub(_python_conversion, fmt)

    def render(self, e, probe):
        values, string = [], 0
        for kind, src in zip(self.kinds, self.sources):
            if kind == "s":
                values.append(comm_of(e["strs"][string]))
                string += 1
                continue
            v = probespec.value(e, src, probe)
            if kind in "uxXp":
                v &= (1 << 64) - 1
            values.append(chr(v & 0x10FFFF) if kind == "c" else v)
        return self.python % tuple(values)


def _python_conversion(m):
    """A C conversion as Python's: %llu -> %d, %p -> %x (length modifiers dropped)."""
    conv = m.group(3)
    if conv == "%":
        return "%%"
    return "%" + m.group(1) + {"i": "d", "u": "d", "p": "x"}.get(conv, conv)


def split_probe(text):
    """'SPEC [(FILTER)] ["FORMAT"[, ARG...]]' -> (spec, filter or None, format, [args])."""
    m = re.match(r"\s*([^\s(\"]+)\s*(?:\((.*?)\))?\s*(?:\"((?:[^\"\\]|\\.)*)\"\s*(.*))?$", text,
                 re.S)
    if not m:
        raise UsageError(f"cannot parse probe {text!r}")
    spec, flt, fmt, rest = m.groups()
    args = [a.strip() for a in (rest or "").lstrip(",").split(",") if a.strip()]
    return spec, flt, (fmt or "").encode().decode("unicode_escape"), args


class Trace(ProbeTool):
    name = "trace"
    summary = "print user function calls and tracepoint hits with formatted arguments"
    description = (
        "Print one line per hit of the probes (BCC's trace): PROBE is SPEC [(FILTER)]\n"
        "[\"FORMAT\", ARG, ...], SPEC t:CATEGORY:EVENT, p:LIB:FUNC or r:LIB:FUNC; ARGs are\n"
        "argN (entry), retval (return) or args->FIELD (tracepoints); FILTER is SOURCE OP\n"
        "NUMBER, evaluated in the kernel. Kernel functions need kprobes, which this kernel\n"
        "lacks.\n"
        "  trace 'p:c:write (arg3 > 100) \"fd %d size %d\", arg1, arg3'\n"
        "  trace 't:syscalls:sys_enter_openat \"%s\", args->filename'  trace 'r:c:malloc \"%p\", retval'")
    streams_events = True
    options = (
        Option("-M", "--max-events", type=positive_int("max events"),
               help="number of events to print before quitting"),
        flag("-t", "--timestamp", help="print timestamp column (offset from trace start)"),
        flag("-T", "--time", help="print time column"),
        Option("-n", "--name", help="only print process names containing this name"),
        Option("-f", "--msg-filter", help="only print the msg of event containing this string"),
        flag("-K", "--kernel-stack", help="output kernel stack trace"),
        flag("-U", "--user-stack", help="output user stack trace"),
        Option("--duration", type=positive_int("duration"), help="trace this many seconds"),
        Option("probes", nargs="+", metavar="probe", help="SPEC [(FILTER)] [\"FORMAT\", ARGS]"))

    def plan(self, opts):
        plan, self._printf = [], []
        for text in opts.probes:
            spec, flt, fmt, args = split_probe(text)
            for probe in probespec.expand(spec, opts.pid, returns=True):
                printf = Printf(probe, fmt, args)
                cfg = {"mode": "event", "strings": printf.strings,
                       "user_stack": int(opts.user_stack), "kernel_stack": int(opts.kernel_stack)}
                if flt:
                    cfg["filter"] = probespec.parse_filter(probe, flt)
                plan.append((probe, cfg))
                self._printf.append(printf)
        self._shown, self._start = 0, time.monotonic_ns()
        self._symbolizer = Symbolizer() if opts.user_stack or opts.kernel_stack else None
        return plan

    def banner_for(self, opts):
        cols = ("%-14s " % "TIME" if opts.time else "") + \
            ("%-14s " % "TIME" if opts.timestamp else "")
        return cols + "%-7s %-7s %-15s %-16s %s" % ("PID", "TID", "COMM", "FUNC", "-")

    def events(self, batch, obj, args, out):
        for e in batch:
            if args.max_events and self._shown >= args.max_events:
                self.stop.stopped = True  # -M: done; the ring loop ends after this batch
                return
            probe = self.probes[int(e["probe"])]
            comm = comm_of(e["comm"])
            if args.name and args.name not in comm:
                continue
            msg = self._printf[int(e["probe"])].render(e, probe)
            if args.msg_filter and args.msg_filter not in msg:
                continue
            self._shown += 1
            rec = {"tool": self.name, "ts_ns": int(e["ts_ns"]), "pid": int(e["pid"]),
                   "tid": int(e["tid"]), "comm": comm, "func": probe.label, "msg": msg}
            prefix = (time.strftime("%H:%M:%S") + " " * 6 + " " if args.time else "") + \
                ("%-14.6f " % ((int(e["ts_ns"]) - self._start) / 1e9) if args.timestamp else "")
            out.text(prefix + "%-7d %-7d %-15s %-16s %s" % (
                rec["pid"], rec["tid"], comm, probe.function or probe.event, msg))
            if self._symbolizer:
                rec.update(self._stacks(obj, e, out))
            out.record(rec)

    def _stacks(self, obj, e, out):
        kid, uid = int(e["kernel_stack"]), int(e["user_stack"])
        req = (int(e["pid"]), kid if kid >= 0 else STACK_NONE, uid if uid >= 0 else STACK_NONE)
        pair = StackDecoder(obj.map("stackmap"), self._symbolizer).decode([req])[req]
        for frame in pair.kernel + pair.user:
            out.text(f"        {frame}")
        return {"kernel_stack": list(pair.kernel), "user_stack": list(pair.user)}
