"""BCC's probe specifications for the multi-tools (funccount, stackcount, trace, argdist), on
tracepoints and uprobes: parsed, expanded (wildcards over a tracepoint category or a binary's
symbols), and turned into the configuration of bpf/probes.bpf.c's generic programs, which are
attached once per probe with the probe's index as cookie.

    t:CATEGORY:EVENT       a tracepoint (wildcards: t:sched:sched_*; 'CATEGORY:EVENT' too in
                           funccount and stackcount, where no library of that name exists)
    p:LIB:FUNC, LIB:FUNC   a user function's entry (LIB: a library name such as c, or a path)
    r:LIB:FUNC             its return (trace, argdist)
    FUNC, p::FUNC          a kernel function: needs kprobes, which this kernel does not have

Sources of values: argN (1-6) and retval of user functions, args->FIELD of tracepoints (from
the event's format file), and in argdist the parameter names its signature declares."""
import fnmatch
import os
import re
from collections import namedtuple

from .binaries import function_names, resolve_binary
from .errors import UsageError

MAX_PROBES = 64
EVENTS_DIR = "/sys/kernel/tracing/events"
MODES = {"count": 0, "stack": 1, "event": 2, "hist": 3, "freq": 4}
KINDS = {"none": 0, "arg": 1, "retval": 2, "field": 3, "dataloc": 4}
CMP = {"==": 1, "!=": 2, "<": 3, "<=": 4, ">": 5, ">=": 6}
KPROBE_MESSAGE = ("kernel functions need kprobes (or fentry), which this kernel does not "
                  "offer: use a tracepoint (t:CATEGORY:EVENT; bpfsight tplist lists them) or a "
                  "user function (LIB:FUNC)")

Field = namedtuple("Field", "name type offset size signed")
Source = namedtuple("Source", "kind index size signed offset string")


class Probe:
    """One attachment: a tracepoint (category, event) or a user function (binary, function)
    at entry or return; `label` names it as the user would."""

    def __init__(self, kind, label, category=None, event=None, binary=None, function=None):
        self.kind, self.label = kind, label
        self.category, self.event = category, event
        self.binary, self.function = binary, function
        self._fields = None

    @property
    def fields(self):
        if self._fields is None:
            self._fields = tracepoint_fields(self.category, self.event) \
                if self.kind == "tracepoint" else {}
        return self._fields

    def attach(self, obj, cookie, pid):
        if self.kind == "tracepoint":
            obj.attach_tracepoint("probe_tracepoint", self.category, self.event, cookie)
        else:
            ret = self.kind == "uretprobe"
            obj.attach_uprobe("probe_uretprobe" if ret else "probe_uprobe", self.binary,
                              self.function, pid=pid or -1, retprobe=ret, cookie=cookie)


def tracepoint_fields(category, event):
    """{name: Field} of a tracepoint's record, from its format file."""
    fields = {}
    try:
        with open(f"{EVENTS_DIR}/{category}/{event}/format") as f:
            for line in f:
                m = re.match(r"\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);",
                             line)
                if m:
                    decl = m.group(1).strip()
                    name = re.sub(r"\[.*\]$", "", decl.split()[-1]).lstrip("*")
                    fields[name] = Field(name, decl, int(m.group(2)), int(m.group(3)),
                                         m.group(4) == "1")
    except OSError:
        raise UsageError(f"no tracepoint {category}:{event}") from None
    return fields


def _tracepoints(category, event):
    try:
        cats = [c for c in sorted(os.listdir(EVENTS_DIR)) if fnmatch.fnmatchcase(c, category)]
    except OSError:
        raise UsageError(f"cannot read {EVENTS_DIR}: is tracefs mounted?") from None
    found = [(c, e) for c in cats for e in sorted(os.listdir(f"{EVENTS_DIR}/{c}"))
             if os.path.isdir(f"{EVENTS_DIR}/{c}/{e}") and fnmatch.fnmatchcase(e, event)]
    return found


def expand(spec, pid=None, returns=False, bare_tracepoints=False, regex=False):
    """The probes a target specification names (wildcards expanded); UsageError for one that
    names none, a kernel function, or a kind this tool does not take."""
    kind, sep, rest = spec.partition(":")
    if not sep:
        raise UsageError(f"{spec!r}: {KPROBE_MESSAGE}")
    if kind not in ("p", "r", "t", "u"):
        kind, rest = "", spec  # LIB:FUNC or (funccount, stackcount) CATEGORY:EVENT
    if kind == "u":
        raise UsageError(f"{spec!r}: USDT probes are traced by `bpfsight usdt`")
    if kind == "r" and not returns:
        raise UsageError(f"{spec!r}: this tool takes no return probes (r:)")
    where, sep, name = rest.partition(":")
    if kind == "t" or (kind == "" and bare_tracepoints and sep and
                       _tracepoints(where, name) and "/" not in where):
        if not sep or not where or not name:
            raise UsageError(f"{spec!r}: a tracepoint is t:CATEGORY:EVENT")
        probes = [Probe("tracepoint", f"{c}:{e}", category=c, event=e)
                  for c, e in _tracepoints(where, name)]
        if not probes:
            raise UsageError(f"{spec!r}: no tracepoint matches (bpfsight tplist lists them)")
        return probes
    if not sep or not where or not name:
        raise UsageError(f"{spec!r}: {KPROBE_MESSAGE}")
    binary = resolve_binary(where, pid)
    if regex or any(ch in name for ch in "*?["):
        match = re.compile(name).fullmatch if regex else \
            (lambda n: fnmatch.fnmatchcase(n, name))
        names = [n for n in function_names(binary) if match(n)]
    else:
        names = [name]
    if not names:
        raise UsageError(f"{spec!r}: no function of {binary} matches")
    if len(names) > MAX_PROBES:
        raise UsageError(f"{spec!r}: {len(names)} functions match, at most {MAX_PROBES}")
    kind = "uretprobe" if kind == "r" else "uprobe"
    return [Probe(kind, f"{where}:{n}", binary=binary, function=n) for n in names]


def source(probe, expr, params=None):
    """A value source: argN, retval, args->FIELD, or a parameter name of params."""
    expr = expr.strip()
    if params and expr in params:
        expr = f"arg{params.index(expr) + 1}"
    m = re.fullmatch(r"arg([1-6])", expr)
    if m:
        if probe.kind != "uprobe":
            raise UsageError(f"{expr}: arguments are read at a function's entry (p:)")
        return Source(KINDS["arg"], int(m.group(1)), 8, True, 0, False)
    if expr == "retval":
        if probe.kind != "uretprobe":
            raise UsageError("retval: read at a function's return (r:)")
        return Source(KINDS["retval"], 0, 8, True, 0, False)
    m = re.fullmatch(r"args->(\w+)", expr)
    if m:
        if probe.kind != "tracepoint":
            raise UsageError(f"{expr}: tracepoint fields are read on t: probes")
        f = probe.fields.get(m.group(1))
        if f is None:
            raise UsageError(f"{expr}: {probe.label} has no field {m.group(1)!r} (fields: "
                             f"{', '.join(probe.fields)})")
        if f.type.startswith("__data_loc"):
            return Source(KINDS["dataloc"], 0, 4, False, f.offset, True)
        if f.size not in (1, 2, 4, 8):
            raise UsageError(f"{expr}: a field of {f.size} bytes is not a number")
        return Source(KINDS["field"], 0, f.size, f.signed, f.offset, "char *" in f.type)
    raise UsageError(f"{expr!r}: expected argN, retval, args->FIELD"
                     + (f" or one of {', '.join(params)}" if params else ""))


def parse_filter(probe, text, params=None):
    """'SOURCE OP NUMBER' -> (Source, op code, constant), evaluated in the kernel."""
    m = re.fullmatch(r"\s*(\S+?)\s*(==|!=|<=|>=|<|>)\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*", text)
    if not m:
        raise UsageError(f"filter {text!r}: expected SOURCE OP NUMBER (e.g. arg2 > 1000, "
                         "args->ret < 0)")
    return source(probe, m.group(1), params), CMP[m.group(2)], int(m.group(3), 0)


def configure(obj, probes_cfg):
    """Write [(cookie, dict of probe_cfg fields)] into the loaded object's probe_cfg map."""
    import numpy as np
    table = obj.map("probe_cfg")
    for cookie, cfg in probes_cfg:
        v = np.zeros((), table.value_dtype())
        v["mode"] = MODES[cfg.get("mode", "count")]
        v["user_stack"], v["kernel_stack"] = cfg.get("user_stack", 0), cfg.get("kernel_stack", 0)
        v["by_pid"] = cfg.get("by_pid", 0)
        if cfg.get("filter"):
            src, op, const = cfg["filter"]
            _set_source(v["filter"], src)
            v["op"], v["constant"] = op, const
        if cfg.get("value"):
            _set_source(v["value"], cfg["value"])
        for i, src in enumerate(cfg.get("strings", ())[:2]):
            _set_source(v["strs"][i], src)
        table[cookie] = v.tobytes()


def _set_source(dst, src):
    dst["kind"], dst["index"], dst["size"] = src.kind, src.index, src.size
    dst["is_signed"], dst["offset"] = int(src.signed), src.offset


def value(e, src, probe):
    """A source's value in an event record (the arguments, retval and the tracepoint record's
    first bytes are in it)."""
    if src.kind == KINDS["arg"]:
        return _signed(int(e["args"][src.index - 1]))
    if src.kind == KINDS["retval"]:
        return _signed(int(e["retval"]))
    raw = bytes(e["tp"])[src.offset:src.offset + src.size]
    return int.from_bytes(raw.ljust(src.size, b"\0"), "little", signed=src.signed)


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def attach_all(obj, probes, pid):
    for cookie, probe in enumerate(probes):
        probe.attach(obj, cookie, pid)
