"""What every tool shares, written once: the Tool interface, common arguments, opening an object
with the right hook variants, the signal-aware interval loop and the ring-buffer loop."""
import argparse
import signal
import sys
import time

from .bpf import features
from .bpf.errors import MissingTracepointError
from .bpf.object import ObjectSpec
from .report.output import Output, clock_hms
from .target import apply_target, pid_arg

HOOK_PREFERENCE = ("tp_btf", "raw_tp", "tracepoint")


class Tool:
    """A subcommand. Subclasses set name/summary and implement add_arguments and run."""
    name = ""
    summary = ""
    description = None  # longer --help text: what differs from the BCC namesake and why

    def add_arguments(self, parser):
        pass

    def run(self, args):
        raise NotImplementedError


# --- argument helpers ---

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


def add_interval_args(parser, default_interval=99999999):
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
    features.ensure_tracefs()
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

    def sleep(self, seconds):
        """Sleep unless stopped; returns False once a stop signal has arrived."""
        if self.stopped:
            return False
        self._waiting = True
        try:
            time.sleep(seconds)
        except _Wake:
            pass
        finally:
            self._waiting = False
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
        stop._waiting = True
        try:
            ring.poll(poll_s)
        except _Wake:
            pass
        finally:
            stop._waiting = False
        handle(ring)
        if deadline and time.monotonic() >= deadline:
            break
    handle(ring)  # what arrived while stopping


def snoop(spec, out, banner, handle, duration=None, header=None):
    """What every event-streaming tool does: load and attach spec, print the banner (and a
    column header), then hand each batch of its ring buffer ("events", drops counted in
    "event_drops") to handle(ring) until stopped or duration elapses, and report drops. The
    ring opens after the banner: the kernel keeps events until they are read, and the ring's
    imports (mmap, select) stay off the start-up path."""
    with StopSignal() as stop, spec.load() as obj:
        obj.attach_all()
        out.banner(banner)
        if header:
            out.text(header)
        from .bpf.ringbuf import RingBuffer
        with RingBuffer(obj.map("events"), obj.map("event_drops")) as ring:
            stream_loop(stop, ring, handle, duration=duration)
            report_drops(ring, out)
    return 0


def report_drops(ring, out):
    drops = ring.drops()
    if drops:
        print(f"bpfsight: {drops} events dropped (ring buffer full)", file=sys.stderr)
    return drops


def timestamp_line(args, out):
    if getattr(args, "timestamp", False):
        out.text("%-8s" % clock_hms())
