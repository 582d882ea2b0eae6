"""run: a user's own BPF program with bpftrace's convenience — compiled, attached by section,
its maps printed decoded from BTF at each interval and at exit, its ring buffers streamed."""
import time

from ..errors import UsageError
from ..report.histogram import format_log2
from ..target import pid_arg, resolve_pid
from ..tool import StopSignal, Tool, add_interval_args, output_for, positive_int
from ..userprog import DEFAULT_FREQ, Program


def global_arg(text):
    """NAME=VALUE for a `const volatile` global: an integer (0x.. too) or text."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"invalid --set {text!r}: expected NAME=VALUE")
    try:
        return name, int(value, 0)
    except ValueError:
        return name, value.encode()


class Run(Tool):
    name = "run"
    summary = "run your own .bpf.c/.bpf.o: attach by section, print its maps decoded from BTF"
    description = (
        "Run your own BPF program: a .bpf.c is compiled with clang against this kernel's\n"
        "vmlinux.h and bpfsight's headers (bpf/include: hist.h, bits.bpf.h, maps.bpf.h); every\n"
        "program is attached by its section (tracepoint/, tp_btf/, raw_tp/, uprobe/PATH:FUNC,\n"
        "uretprobe/, usdt/, perf_event sampling at -F Hz). Every map is printed at each\n"
        "interval and at exit, decoded from the object's BTF: a value with a `slots` array is\n"
        "a log2 histogram per key, anything else a table sorted by its first counter; a field\n"
        "named *stack_id is symbolised. Ring buffer records print one per line (struct NAME for\n"
        "a ring named NAME, else struct event). Maps are cumulative, as in bpftrace.\n"
        "See docs/api.md and examples/.")
    intermixed = True

    def add_arguments(self, p):
        p.add_argument("program", help="a .bpf.c source or a compiled .bpf.o")
        p.add_argument("-p", "--pid", type=pid_arg, help="perf_event programs sample this PID only")
        p.add_argument("-F", "--frequency", type=positive_int("frequency"), default=DEFAULT_FREQ,
                       help=f"perf_event sampling frequency in Hz (default {DEFAULT_FREQ})")
        p.add_argument("-s", "--set", dest="globals", type=global_arg, action="append",
                       default=[], metavar="NAME=VALUE",
                       help="set a const volatile global before load (repeatable)")
        p.add_argument("--top", type=positive_int("top"), default=20,
                       help="rows of each table to print (default 20)")
        p.add_argument("--json", action="store_true", help="NDJSON output, one object per line")
        add_interval_args(p)

    def run(self, args):
        out = output_for(args)
        program = Program(args.program, pid=resolve_pid(args.pid), freq=args.frequency,
                          globals=dict(args.globals))
        with StopSignal() as stop, program:
            attached = ", ".join(f"{n} ({p.section})" for n, p in program.obj.programs.items())
            out.banner(f"Running {args.program}: {attached}. Hit Ctrl-C to end.")
            done, deadline = 0, time.monotonic() + args.interval
            while True:
                alive = self._wait(stop, program, out, deadline)
                self._print_maps(program, args, out)
                done += 1
                if not alive or (args.count is not None and done >= args.count):
                    break
                deadline += args.interval
        return 0

    def _wait(self, stop, program, out, deadline):
        """Until deadline or a stop signal, streaming ring records if there are rings; False
        once stopped."""
        if not program.rings():
            return stop.sleep(max(0.0, deadline - time.monotonic()))
        while not stop.stopped and time.monotonic() < deadline:
            wait = min(0.1, max(0.0, deadline - time.monotonic()))
            stop.wait_on(program.poll, wait)
            _print_records(program.records(), out)
        _print_records(program.records(), out)
        return not stop.stopped

    def _print_maps(self, program, args, out):
        for reading in program.snapshot(top=args.top):
            out.record({"tool": self.name, **reading})
            out.text(render(reading))


def _print_records(records, out):
    for rec in records:
        out.record(rec)
        out.text(" ".join(f"{k}={_short(v)}" for k, v in rec.items()))


def render(reading):
    """A map reading (see userprog) as text, plain data in, text out."""
    name = reading["map"]
    if reading["kind"] == "globals":
        return "\n".join(f"@{var}: {_short(v)}" for var, v in reading["values"].items()) + "\n"
    lines = [f"@{name} ({reading['keys']} keys):" if reading["keys"] != 1 else f"@{name}:"]
    if reading["kind"] == "hist":
        for row in reading["rows"]:
            label = _label(row["key"])
            extra = " ".join(f"{k}={_short(v)}" for k, v in row.items() if k not in ("key", "hist"))
            if label or extra:
                lines.append(f"[{' '.join(x for x in (label, extra) if x)}]")
            lines.append(format_log2(row["hist"]).rstrip("\n") or "  (empty)")
        return "\n".join(lines) + "\n"
    rows = reading["rows"]
    if not rows:
        return "\n".join(lines + ["  (empty)"]) + "\n"
    flat = [{**_flatten("", r["key"], "key"), **_flatten("", r["value"], "value")} for r in rows]
    stacks = [c for c in flat[0] if isinstance(flat[0][c], list) and
              all(isinstance(f, str) for f in flat[0][c])]
    cols = [c for c in flat[0] if c not in stacks]
    widths = {c: max(len(c), *(len(_short(f[c])) for f in flat)) for c in cols}
    lines.append("  " + " ".join(c.ljust(widths[c]) for c in cols))
    for f in flat:
        lines.append("  " + " ".join(_short(f[c]).ljust(widths[c]) for c in cols))
        for c in stacks:
            lines += [f"      {frame}" for frame in f[c]] or ["      [no stack]"]
    if reading["keys"] > len(rows):
        lines.append(f"  ... {reading['keys'] - len(rows)} more")
    return "\n".join(lines) + "\n"


def _flatten(prefix, value, default):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}{k}.", v, k) if isinstance(v, dict)
                       else {f"{prefix}{k}": v})
        return out
    return {prefix.rstrip(".") or default: value}


def _label(key):
    if isinstance(key, dict):
        return " ".join(f"{k}={_short(v)}" for k, v in _flatten("", key, "key").items())
    return f"key={key}" if key not in (0, None) else ""


def _short(value):
    if isinstance(value, list):
        text = ",".join(str(v) for v in value[:8])
        return f"[{text}{',...' if len(value) > 8 else ''}]"
    return str(value)
