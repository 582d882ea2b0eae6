"""What every tool shares, written once: the Tool interface, common arguments, opening an object
with the right hook variants, the signal-aware interval loop and the ring-buffer loop."""
import argparse
import signal
import sys
import time

from .bpf import features
from .bpf.errors import MissingTracepointError
from .errors import UsageError
from .bpf.object import Object, ObjectSpec, check_privileges
from .report.output import Output, clock_hms
from .target import apply_target, pid_arg
from .tracefs import mount_tracefs

HOOK_PREFERENCE = ("tp_btf", "raw_tp", "tracepoint")


class Option:
    """One option of a tool, declared once: its flags and help for the command line, its
    keyword (`dest`) and default for the Python API, the exporter and diagnose. Options that
    share a `group` exclude each other."""
    __slots__ = ("flags", "dest", "default", "group", "kwargs")

    def __init__(self, *flags, default=None, group=None, **kwargs):
        self.flags = flags
        name = next((f for f in flags if f.startswith("--")), flags[0])
        self.dest = kwargs.pop("dest", None) or name.lstrip("-").replace("-", "_")
        self.default = default
        self.group = group
        self.kwargs = kwargs


def flag(*flags, help, group=None, dest=None):
    """A yes/no option, off by default."""
    return Option(*flags, action="store_true", default=False, help=help, group=group, dest=dest)


TIMESTAMP = flag("-T", "--timestamp", help="include timestamp on output")
TIME_COLUMN = flag("-T", "--time", help="include time column on output (HH:MM:SS)")  # snoop tools


class Options:
    """The option values of one run of a tool, with attribute access: the declared defaults,
    then what the caller gave. The CLI's parsed arguments serve the same role."""

    def __init__(self, tool, **values):
        self.pid = self.cgroup = None
        self.json = False
        self.interval, self.count = FOREVER, None
        for opt in tool.options:
            setattr(self, opt.dest, opt.default)
        known = {o.dest for o in tool.options} | set(vars(self))
        for key, value in values.items():
            if key not in known:
                raise UsageError(f"{tool.name} has no option {key!r} (it has: "
                                 f"{', '.join(sorted(known))})")
            setattr(self, key, value)

    def __repr__(self):
        return "Options(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"


class Tool:
    """A subcommand, defined once for every consumer.

    A tool declares its `options` (Option, for the CLI and `Options`), whether it takes a
    target (-p/-c) and an [interval] [count], and its object's configuration: `configure`
    (globals, programs and map shapes of the options, before hook variants are chosen) and
    `sized` (after). `open(opts)` is the one way to get a configured spec, for the CLI, the
    exporter, diagnose and the Python API. A tool that aggregates in the kernel also defines
    `collect(obj, opts)` (records since the last call: plain data, or objects with to_dict())
    and `render(records, opts, out)` (text); the generic `run` then does the rest. Tools that
    stream or report differently override `run`."""
    name = ""
    summary = ""
    description = None  # longer --help text: what differs from the BCC namesake and why
    intermixed = False  # options may come between positionals (`run PROG -F 99 1 5`)
    options = ()        # Option declarations
    target = False      # takes -p PID and -c CGROUP (filtered in the kernel)
    intervals = False   # takes [interval] [count]
    default_interval = None  # seconds, when not given (None: one report at Ctrl-C)
    banner = "Tracing... Hit Ctrl-C to end."
    object_name = None  # its BPF object, when not named after the tool
    spaced = True       # a blank line (and -T's time) before each interval's output; False:
                        # one row per interval under a header printed once (header_for)
    streams = False     # records arrive one by one on the ring buffer "events" (snoop tools)
    fixed_size = True   # ... all of the record type's size (see snoop)

    def add_arguments(self, parser):
        add_options(parser, self.options)
        if self.target:
            add_target_args(parser)
        add_output_args(parser)
        if self.intervals:
            add_interval_args(parser, self.default_interval or FOREVER)

    # --- the definition ---

    def configure(self, spec, opts):
        """Globals, program switches and map shapes for opts (before hooks are chosen)."""

    def sized(self, spec, opts):
        """Map sizes that depend on the hook variants chosen (task storage or a hash)."""

    def attach(self, obj, opts):
        obj.attach_all()

    def collect(self, obj, opts):
        """Aggregating tools: the records since the last call."""
        raise NotImplementedError(f"{self.name} has no collect()")

    def decode(self, batch, dtype, opts):
        """Streaming tools: the records of one batch read from the ring (see snoop), as plain
        data, less what a user-space filter leaves out."""
        raise NotImplementedError(f"{self.name} has no decode()")

    def render(self, records, opts, out):
        pass

    def banner_for(self, opts):
        return self.banner

    def header_for(self, opts):
        """Column headings printed once, under the banner (rows-per-interval tools)."""
        return None

    # --- consumers ---

    def open(self, opts):
        """The tool's object opened and configured for opts: target filter, configure,
        hook variants, sized."""
        spec = open_spec(self.object_name or self.name, opts, self.name)
        self.configure(spec, opts)
        select_hooks(spec, self.name)
        self.sized(spec, opts)
        return spec

    def run(self, args):
        """Load, attach, then each interval: collect, render as text, or one JSON object per
        record. Streaming tools: each batch of records, decoded and rendered as it comes."""
        out = output_for(args)
        spec = self.open(args)
        if self.streams:
            def show(batch, dtype):
                records = list(self.decode(batch, dtype, args))
                for record in records:
                    out.record({"tool": self.name, **as_dict(record)})
                self.render(records, args, out)
            return snoop(spec, out, self.banner_for(args), show,
                         duration=getattr(args, "duration", None), header=self.header_for(args),
                         fixed_size=self.fixed_size, attach=lambda obj: self.attach(obj, args))
        with StopSignal() as stop, spec.load() as obj:
            self.attach(obj, args)
            out.banner(self.banner_for(args))
            if self.header_for(args):
                out.text(self.header_for(args))

            def tick():
                records = self.collect(obj, args)
                if self.spaced:
                    out.text()
                    timestamp_line(args, out)
                self.render(records, args, out)
                for record in records:
                    out.record({"tool": self.name, **as_dict(record)})

            interval_loop(stop, args.interval, args.count, tick)
        return 0


def as_dict(record):
    return record.to_dict() if hasattr(record, "to_dict") else record


# --- argument helpers ---

def add_options(parser, options):
    """Declared options as argparse arguments; a group's options exclude each other."""
    groups = {}
    for opt in options:
        where = parser
        if opt.group:
            if opt.group not in groups:  # (setdefault would add an empty group each time)
                groups[opt.group] = parser.add_mutually_exclusive_group()
            where = groups[opt.group]
        named = {"dest": opt.dest} if opt.flags[0].startswith("-") else {}
        where.add_argument(*opt.flags, default=opt.default, **named, **opt.kwargs)


def positive_int(what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: expected a whole number")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: must be positive")
        return value
    return parse


# how long a streaming tool runs: -d/--duration, or --duration alone where -d means something
# else (the TCP tools' BCC flags)
DURATION = Option("-d", "--duration", type=positive_int("duration"),
                  help="stop after this many seconds")
LONG_DURATION = Option("--duration", type=positive_int("duration"),
                       help="stop after this many seconds")


def listen_arg(text):
    """'HOST:PORT', '[V6ADDR]:PORT' or ':PORT' (every address) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise UsageError(f"invalid listen address {text!r}: expected HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise UsageError(f"invalid listen address {text!r}: port must be 0-65535")
    return host, port


FOREVER = 99999999  # the interval of a tool run without one: a single report at Ctrl-C


def add_interval_args(parser, default_interval=FOREVER):
    parser.add_argument("interval", nargs="?", type=positive_int("interval"),
                        default=default_interval, help="output interval, in seconds")
    parser.add_argument("count", nargs="?", type=positive_int("count"), default=None,
                        help="number of outputs")


def add_target_args(parser, pid_help="trace this PID only", cgroup=True):
    parser.add_argument("-p", "--pid", type=pid_arg, help=pid_help)
    if cgroup:
        parser.add_argument("-c", "--cgroup", metavar="PATH",
                            help="trace this cgroup v2 (and its descendants) only")


def add_output_args(parser):
    parser.add_argument("--json", action="store_true", help="NDJSON output, one object per line")
    parser.add_argument("--stats", action="store_true",
                        help="at exit (and each interval with -T) print to stderr what tracing "
                             "cost: runs and ns per BPF program, CPU share, ring-buffer drops, "
                             "bpfsight's own CPU and RSS (switches BPF run-time stats on while "
                             "running, which adds ~20-50 ns per program run)")


def output_for(args):
    return Output(json_mode=getattr(args, "json", False))


# --- opening objects ---

def _hook_of(section):
    """('tp_btf', 'sched_switch') for 'tp_btf/sched_switch'; the event name is the twin key."""
    kind, _, rest = section.partition("/")
    return kind, rest.rsplit("/", 1)[-1], rest.replace("/", ":")


def _hook_exists(kind, section_rest):
    if kind in ("tp_btf", "raw_tp"):
        return features.btf_tracepoint_exists(section_rest)
    if kind == "tracepoint":
        cat, _, event = section_rest.partition(":")
        return features.tracepoint_exists(cat, event)
    return True


def plan_hooks(spec):
    """{event: (kind, hook) chosen, or (None, hook) when this kernel has no variant} for the
    programs of spec that are switched on. tp_btf first, then raw_tp, then the classic
    tracepoint: the cheapest this kernel has, found by probing, never by kernel version."""
    by_event = {}
    for prog in spec.programs.values():
        kind, event, rest = _hook_of(prog.section)
        if kind in HOOK_PREFERENCE and prog.autoload:
            by_event.setdefault(event, []).append((HOOK_PREFERENCE.index(kind), prog, kind, rest))
    plan = {}
    for event, variants in by_event.items():
        variants.sort(key=lambda v: v[0])
        chosen = next((v for v in variants if _feature_ok(v[2]) and _hook_exists(v[2], v[3])), None)
        plan[event] = (chosen, variants)
    return plan


def select_hooks(spec, tool):
    """Switch on the chosen variant of each hook and its twins off (see plan_hooks)."""
    for event, (chosen, variants) in plan_hooks(spec).items():
        if chosen is None:
            raise MissingTracepointError(variants[0][3], tool)
        for v in variants:
            v[1].autoload = v is chosen
    return spec


def _feature_ok(kind):
    return features.probe({"tp_btf": "tp_btf", "raw_tp": "raw_tp",
                           "tracepoint": "tracepoint"}[kind]).available is not False


def open_spec(name, args=None, tool=None):
    """Open object `name` with the target filter from args (-p, -c) applied."""
    check_privileges()  # before any probe: without them every hook would look missing
    mount_tracefs()
    spec = ObjectSpec.open(name)
    if args is not None:
        apply_target(spec, getattr(args, "pid", None), getattr(args, "cgroup", None))
    return spec


def disable_programs(spec, *names):
    for n in names:
        spec.programs[n].autoload = False


# --- the loops ---

class _Wake(Exception):
    pass


class StopSignal:
    """SIGINT/SIGTERM end the tool cleanly: the current wait is cut short, the last interval is
    printed, everything is detached. Installed for the duration of a `with` block."""

    def __init__(self):
        self.stopped = False
        self._waiting = False
        self._old = {}

    def _handle(self, signum, frame):
        self.stopped = True
        if self._waiting:
            raise _Wake()

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def wait_on(self, fn, *args):
        """fn(*args), cut short by a stop signal: its result, or None when one arrived."""
        self._waiting = True
        try:
            return fn(*args)
        except _Wake:
            return None
        finally:
            self._waiting = False

    def sleep(self, seconds):
        """Sleep unless stopped; returns False once a stop signal has arrived."""
        if not self.stopped:
            self.wait_on(time.sleep, seconds)
        return not self.stopped


def interval_loop(stop, interval, count, tick):
    """Call tick() every interval seconds, count times (forever if None); a stop signal prints
    the interval in progress and ends the loop."""
    from . import selfstats  # here, not at start-up: one module fewer to read before attaching
    done = 0
    while True:
        alive = stop.sleep(interval)
        tick()
        selfstats.after_interval()
        done += 1
        if not alive or (count is not None and done >= count):
            return


def stream_loop(stop, ring, handle, duration=None, poll_s=0.1):
    """Hand batches of ring-buffer records to handle() until stopped or duration elapses."""
    deadline = time.monotonic() + duration if duration else None
    while not stop.stopped:
        stop.wait_on(ring.poll, poll_s)
        handle(ring)
        if deadline and time.monotonic() >= deadline:
            break
    handle(ring)  # what arrived while stopping


def snoop(spec, out, banner, show, duration=None, header=None, fixed_size=True, attach=None):
    """What every event-streaming tool does: load and attach spec, print the banner (and a
    column header), then hand each batch of records of its ring buffer ("events", drops
    counted in "event_drops") to show(batch, dtype) until stopped or duration elapses, and
    report drops. dtype is the records' type from the object's BTF (EVENT_RECORD); the batch
    is a numpy array of them, or, with fixed_size=False (records that end in variable-length
    data), a list of each record's bytes. The ring opens after the banner: the kernel keeps
    events until they are read, and the ring's imports (mmap, select) stay off the start-up
    path. attach(obj) attaches the programs (default: each by its section)."""
    with StopSignal() as stop, spec.load() as obj:
        (attach or Object.attach_all)(obj)
        out.banner(banner)
        if header:
            out.text(header)
        dtype = obj.record_dtype()
        with event_ring(obj) as ring:
            read = (lambda r: r.read_array(dtype)) if fixed_size else (lambda r: r.read())
            stream_loop(stop, ring, lambda r: show(read(r), dtype), duration=duration)
            report_drops(ring, out)
    return 0


def event_ring(obj):
    """The project's ring buffer of a tool's object ("events", bpf/include/events.bpf.h), with
    drops() from its per-CPU drop counter ("event_drops")."""
    from .bpf.ringbuf import RingBuffer
    ring = RingBuffer(obj.map("events"))
    ring.drops = obj.map("event_drops").sum_cpus
    return ring


def report_drops(ring, out):
    drops = ring.drops()
    if drops:
        print(f"bpfsight: {drops} events dropped (ring buffer full)", file=sys.stderr)
    return drops


def timestamp_line(args, out):
    if getattr(args, "timestamp", False):
        out.text("%-8s" % clock_hms())
