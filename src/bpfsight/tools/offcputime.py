"""offcputime: time blocked off CPU by kernel and user stack and thread state (BCC's
offcputime; with --wakers, also who woke the thread, as BCC's offwaketime)."""
import argparse

from .. import pyframes
from ..errors import UsageError
from ..profile.report import (StackReport, banner, collect, decode_stacks, emit, read_errors,
                              size_stack_maps, stack_options)
from ..profile.stacks import Sample, Waker, merge_samples
from ..report.grouped import comm_of
from ..profile.symbols import Symbolizer
from ..target import resolve_pid
from ..tool import (FOREVER, Option, StopSignal, Tool, disable_programs, flag, output_for,
                    positive_int)
U64_MAX = (1 << 64) - 1
STATE_NAMES = {"R": 0, "S": 1, "D": 2, "T": 4, "t": 8}
TASK_NOLOAD = 0x400


def state_name(state):
    """ps's letters for the state a thread blocked in (R: it was preempted, I: idle wait)."""
    if state == 0:
        return "R"
    if state & 2 and state & TASK_NOLOAD:
        return "I"
    for letter, bit in (("S", 1), ("D", 2), ("T", 4), ("t", 8)):
        if state & bit:
            return letter
    return hex(state)


def state_arg(text):
    """BCC's --state: a bitmask (0 = preempted, 1 = sleeping, 2 = uninterruptible, ...), or
    one of the letters R, S, D, T, t."""
    if text in STATE_NAMES:
        return STATE_NAMES[text]
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid state {text!r}: expected a bitmask (e.g. 2) or one of R, S, D, T, t")
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid state {text!r}: must not be negative")
    return value


def block_time(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid block time {text!r}: expected microseconds")
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid block time {text!r}: must not be negative")
    return value


class Offcputime(Tool):
    name = "offcputime"
    summary = "time blocked off CPU by stack and thread state"
    description = (
        "Summarize off-CPU time by stack trace: the time from a thread being switched out\n"
        "(sched_switch, where its kernel and user stacks are taken) to it being switched back\n"
        "in, in microseconds, per thread, stack pair and the state it blocked in (R preempted,\n"
        "S sleeping, D uninterruptible, I idle). As BCC's offcputime, plus --wakers (the\n"
        "waker's stacks, taken at sched_waking, as BCC's offwaketime) and --html/--svg/--pprof.\n"
        "A CPython 3.10-3.13 target's (-p) Python frames are walked at the switch and shown where\n"
        "the evaluator ran them (--no-python: native frames only).\n"
        "The time includes the wait on the run queue after the wakeup.")

    target = True
    options = (
        Option("-t", "--tid", type=positive_int("TID"), help="trace this TID only", group="who"),
        flag("-u", "--user-threads-only", help="user threads only (no kernel threads)",
             group="who"),
        flag("-k", "--kernel-threads-only", help="kernel threads only (no user threads)",
             group="who"),
        *stack_options(annotations=False),
        flag("--no-stacks", help="take no stacks: time per thread and state only (the cheapest; "
                                 "what the exporter counts)"),
        Option("-m", "--min-block-time", type=block_time, default=1,
               help="the amount of time in microseconds over which we store traces (default 1)"),
        Option("-M", "--max-block-time", type=block_time, default=U64_MAX // 1000,
               help="the amount of time in microseconds under which we store traces "
                    "(default U64_MAX)"),
        Option("--state", type=state_arg, default=None,
               help="filter on this thread state bitmask (eg, 2 == TASK_UNINTERRUPTIBLE) or "
                    "letter (R, S, D, T, t); see include/linux/sched.h"),
        flag("--wakers", help="also key by the waker's stacks (who woke the thread)"),
        pyframes.NO_PYTHON,
        Option("duration", nargs="?", type=positive_int("duration"), default=FOREVER,
               help="duration of trace, in seconds"))

    def configure(self, spec, opts):
        if opts.min_block_time > opts.max_block_time:
            raise UsageError(f"--min-block-time ({opts.min_block_time}) is above "
                             f"--max-block-time ({opts.max_block_time})")
        resolve_pid(opts.tid)
        spec.set_globals(user_threads_only=opts.user_threads_only,
                         kernel_threads_only=opts.kernel_threads_only,
                         # both "only" switches: neither stack is taken
                         user_stacks_only=opts.user_stacks_only or opts.no_stacks,
                         kernel_stacks_only=opts.kernel_stacks_only or opts.no_stacks,
                         min_block_ns=opts.min_block_time * 1000,
                         max_block_ns=min(opts.max_block_time * 1000, U64_MAX),
                         state_filter=-1 if opts.state is None else opts.state,
                         targ_wakers=opts.wakers, targ_tid=opts.tid or 0)
        size_stack_maps(spec, opts)
        if opts.no_stacks:
            spec.maps["stackmap"].max_entries = 1
        if not opts.wakers:
            disable_programs(spec, "offcpu_waking", "offcpu_waking_raw")
        self._python = None
        if opts.pid and not (opts.no_python or opts.no_stacks or opts.kernel_stacks_only):
            self._python = pyframes.configure(spec, opts.pid, self.name)

    def attach(self, obj, opts):
        if self._python is not None:  # before the first switch: its frames from the start
            pyframes.register(obj, self._python)
        obj.attach_all()

    def sized(self, spec, opts):
        if spec.programs["offcpu_switch"].autoload:
            spec.maps["blocks_by_tid"].max_entries = 1  # task storage is used instead

    def run(self, args):
        out = output_for(args)
        spec = self.open(args)
        symbolizer = Symbolizer()
        with StopSignal() as stop, spec.load() as obj:
            self.attach(obj, args)
            banner(args, out, self._banner(args))
            elapsed = collect(stop, obj, symbolizer,
                              args.duration if args.duration != FOREVER else None)
            keys, values = obj.map("counts").read_all()
            samples = self._samples(obj, symbolizer, keys, values, args.wakers)
            errors = read_errors(obj)
        emit(self._report(args, samples, errors, elapsed), args, out)
        return 0

    def _samples(self, obj, symbolizer, keys, values, wakers):
        def target(k):
            return int(k["tgid"]), int(k["kern_stack_id"]), int(k["user_stack_id"])

        def waker(k):
            w = k["waker"]
            if not wakers or not w["comm"][:1].strip(b"\0"):
                return None
            return int(w["pid"]), int(w["kern_stack_id"]), int(w["user_stack_id"])

        requests = {target(k) for k in keys} | {waker(k) for k in keys}
        requests.discard(None)
        pairs = decode_stacks(obj, symbolizer, sorted(requests))
        python = pyframes.stacks(obj, self._python, (int(k["py_stack_id"]) for k in keys))
        samples = []
        for k, v in zip(keys, values):
            w = waker(k)
            total_ns, blocks = int(v["total_ns"]), int(v["count"])
            samples.append(Sample(
                comm_of(k["comm"]), int(k["pid"]), round(total_ns / 1000),
                pyframes.with_frames(pairs[target(k)], python.get(int(k["py_stack_id"]))),
                labels={"tgid": int(k["tgid"]), "state": state_name(int(k["state"]))},
                waker=Waker(comm_of(k["waker"]["comm"]), w[0], pairs[w]) if w else None,
                counts={"blocks": blocks, "total_ns": total_ns}))
        return samples

    def _banner(self, args):
        who = (f"PID {args.pid}" if args.pid else f"TID {args.tid}" if args.tid else
               f"cgroup {args.cgroup}" if args.cgroup else "user threads" if args.user_threads_only else
               "kernel threads" if args.kernel_threads_only else "all threads")
        stack = ("user" if args.user_stacks_only else "kernel" if args.kernel_stacks_only
                 else "user + kernel")
        text = f"Tracing off-CPU time (us) of {who} by {stack} stack"
        if args.duration != FOREVER:
            return text + f" for {args.duration} secs."
        return text + "... Hit Ctrl-C to end."

    def _report(self, args, samples, errors, elapsed):
        total_us = sum(s.value for s in samples)
        return StackReport(
            tool=self.name, samples=samples, errors=errors, unit="us",
            title="Off-CPU Time Flame Graph",
            subtitle=f"bpfsight offcputime: {elapsed:.1f} s traced, {total_us} us off CPU",
            pprof_types=[("offcpu", "nanoseconds"), ("blocks", "count")],
            pprof_values=lambda s: [s.counts.get("total_ns", s.value * 1000),
                                    s.counts.get("blocks", 0)],
            duration_s=elapsed, suffix=lambda s: f" {s.labels['state']}")


class Offwaketime(Offcputime):
    """BCC's offwaketime: offcputime with the waker's stacks always taken (--wakers)."""
    name = "offwaketime"
    object_name = "offcputime"
    summary = "time blocked off CPU by stack, with the stack of the thread that woke it"
    description = ("Summarize time blocked off CPU by the blocked thread's stacks and the "
                   "stacks of the thread that woke it (BCC's offwaketime): offcputime with "
                   "--wakers always on. Folded output (-f) has BCC's layout: the blocked "
                   "stack, '--', then the waker's stack.")
    options = tuple(o for o in Offcputime.options if o.dest != "wakers")

    def configure(self, spec, opts):
        opts.wakers = True
        super().configure(spec, opts)


class Wakeuptime(Offwaketime):
    """BCC's wakeuptime: the time threads were blocked, summed by the stack of the thread
    that woke them (offwaketime's data, without the blocked thread's stacks)."""
    name = "wakeuptime"
    object_name = "offcputime"
    summary = "time threads were blocked, by the stack of the thread that woke them"
    description = ("Summarize the time threads were blocked by the stacks of the threads "
                   "that woke them (BCC's wakeuptime): who wakes whom, and after how long. "
                   "The waker's stacks are taken at sched_waking; a block whose wakeup was "
                   "not seen (it began before tracing) is left out.")

    def _samples(self, obj, symbolizer, keys, values, wakers):
        woken = [Sample(s.waker.comm, s.waker.pid, s.value, s.waker.stacks,
                        labels={"target": s.comm}, counts=s.counts)
                 for s in super()._samples(obj, symbolizer, keys, values, True) if s.waker]
        return merge_samples(woken)

    def _report(self, args, samples, errors, elapsed):
        report = super()._report(args, samples, errors, elapsed)
        report.title, report.suffix = "Wakeup Time Flame Graph", (
            lambda s: f" (target {s.labels['target']})")
        return report
