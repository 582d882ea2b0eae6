"""offcputime: time blocked off CPU by kernel and user stack and thread state (BCC's
offcputime; with --wakers, also who woke the thread, as BCC's offwaketime)."""
import argparse

from ..errors import UsageError
from ..profile.report import (StackReport, add_stack_args, banner, collect, decode_stacks,
                              emit, read_errors, size_stack_maps)
from ..profile.stacks import (Sample, Waker, comm_of, offcpu_key_dtype,
                              offcpu_val_dtype)
from ..profile.symbols import Symbolizer
from ..target import resolve_pid
from ..tool import (StopSignal, Tool, add_target_args, open_spec, output_for,
                    positive_int, select_hooks)

FOREVER = 99999999
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
        "The time includes the wait on the run queue after the wakeup.")

    def add_arguments(self, p):
        who = p.add_mutually_exclusive_group()
        who.add_argument("-t", "--tid", type=positive_int("TID"), help="trace this TID only")
        who.add_argument("-u", "--user-threads-only", action="store_true",
                         help="user threads only (no kernel threads)")
        who.add_argument("-k", "--kernel-threads-only", action="store_true",
                         help="kernel threads only (no user threads)")
        add_target_args(p)
        add_stack_args(p, annotations=False)
        p.add_argument("-m", "--min-block-time", type=block_time, default=1,
                       help="the amount of time in microseconds over which we store traces "
                            "(default 1)")
        p.add_argument("-M", "--max-block-time", type=block_time, default=U64_MAX // 1000,
                       help="the amount of time in microseconds under which we store traces "
                            "(default U64_MAX)")
        p.add_argument("--state", type=state_arg, default=None,
                       help="filter on this thread state bitmask (eg, 2 == TASK_UNINTERRUPTIBLE"
                            ") or letter (R, S, D, T, t); see include/linux/sched.h")
        p.add_argument("--wakers", action="store_true",
                       help="also key by the waker's stacks (who woke the thread)")
        p.add_argument("duration", nargs="?", type=positive_int("duration"), default=FOREVER,
                       help="duration of trace, in seconds")

    def run(self, args):
        if args.min_block_time > args.max_block_time:
            raise UsageError(f"--min-block-time ({args.min_block_time}) is above "
                             f"--max-block-time ({args.max_block_time})")
        resolve_pid(args.tid)
        out = output_for(args)
        spec = open_spec("offcputime", args, self.name)
        spec.set_globals(user_threads_only=args.user_threads_only,
                         kernel_threads_only=args.kernel_threads_only,
                         user_stacks_only=args.user_stacks_only,
                         kernel_stacks_only=args.kernel_stacks_only,
                         min_block_ns=args.min_block_time * 1000,
                         max_block_ns=min(args.max_block_time * 1000, U64_MAX),
                         state_filter=-1 if args.state is None else args.state,
                         targ_wakers=args.wakers, targ_tid=args.tid or 0)
        size_stack_maps(spec, args)
        if not args.wakers:
            for prog in ("offcpu_waking", "offcpu_waking_raw"):
                spec.programs[prog].autoload = False
        select_hooks(spec, self.name)
        if spec.programs["offcpu_switch"].autoload:
            spec.maps["blocks_by_tid"].max_entries = 1  # task storage is used instead
        symbolizer = Symbolizer()
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            banner(args, out, self._banner(args))
            elapsed = collect(stop, obj, symbolizer,
                              args.duration if args.duration != FOREVER else None)
            keys, values = obj.map("counts", key=offcpu_key_dtype,
                                   value=offcpu_val_dtype).read_all()
            samples = self._samples(obj, symbolizer, keys, values, args.wakers)
            errors = read_errors(obj)
        emit(self._report(args, samples, errors, elapsed), args, out)
        return 0

    @staticmethod
    def _samples(obj, symbolizer, keys, values, wakers):
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
        samples = []
        for k, v in zip(keys, values):
            w = waker(k)
            total_ns, blocks = int(v["total_ns"]), int(v["count"])
            samples.append(Sample(
                comm_of(k["comm"]), int(k["pid"]), round(total_ns / 1000), pairs[target(k)],
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
