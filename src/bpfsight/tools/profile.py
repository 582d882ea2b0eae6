"""profile: sample stacks on CPU at a fixed rate with the software cpu-clock (BCC's profile)."""
from .. import pyframes
from ..profile import unwind
from ..bpf.links import (PERF_COUNT_SW_CPU_CLOCK, PERF_TYPE_SOFTWARE, online_cpus,
                         perf_event_open)
from ..errors import UsageError
from ..profile.report import (StackReport, banner, collect, decode_stacks, describe_unwinding,
                              emit, read_errors,
                              size_stack_maps, stack_options)
from ..profile.stacks import Sample
from ..report.grouped import comm_of
from ..profile.symbols import Symbolizer
from ..target import resolve_pid
from ..tool import FOREVER, Option, StopSignal, Tool, flag, output_for, positive_int


DWARF_RING_BYTES = 8 << 20


def max_sample_rate():
    try:
        with open("/proc/sys/kernel/perf_event_max_sample_rate") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


class Profile(Tool):
    name = "profile"
    summary = "sample stacks on CPU at a fixed rate (cpu-clock)"
    description = (
        "Profile CPU usage by sampling stack traces at a timed interval, on all CPUs, with the\n"
        "software cpu-clock perf event (no hardware PMU needed). As BCC's profile, except:\n"
        "-c is the cgroup filter (BCC's -c COUNT sample period is not offered), and --html,\n"
        "--svg and --pprof write a flame graph or a pprof profile.\n\n"
        "User stacks: with --unwind fp (the default for all processes) the kernel walks the\n"
        "frame-pointer chain, and code built without frame pointers (most distribution\n"
        "packages) shows one or two frames. With --unwind dwarf (the default with -p, on\n"
        "x86-64) each sample's registers and top 16 KiB of stack are copied out and unwound\n"
        "with the objects' .eh_frame (perf's --call-graph dwarf), so those stacks are whole;\n"
        "the tables are cached under ~/.cache/bpfsight/cfi by build-id.\n\n"
        "Python: when the -p target runs CPython 3.10-3.13, each sample also carries its Python\n"
        "frames, walked in the kernel from the interpreter's own thread state (no restart, no\n"
        "flag, no ptrace), shown as `function (file:line)` where the evaluator ran them\n"
        "(--no-python: native frames only), and at the end, per Python thread, the share of\n"
        "its samples taken while it held the interpreter lock (the GIL). Another CPython\n"
        "version is named and left out.")

    target = True
    options = (
        Option("-L", "--tid", type=positive_int("TID"), help="profile this TID only"),
        Option("-F", "--frequency", type=positive_int("frequency"), default=49,
               help="sample frequency, Hertz (default 49)"),
        flag("-I", "--include-idle", help="include CPU idle stacks"),
        Option("-C", "--cpu", type=int, default=None, help="cpu number to run profile on"),
        *stack_options(),
        Option("--unwind", choices=("auto", "fp", "dwarf"), default="auto",
               help="how user stacks are walked: fp (frame pointers, in the kernel), dwarf "
                    "(.eh_frame, in user space, from a copy of the stack), auto (dwarf with -p, "
                    "else fp)"),
        pyframes.NO_PYTHON,
        Option("duration", nargs="?", type=positive_int("duration"), default=FOREVER,
               help="duration of trace, in seconds"))

    def configure(self, spec, opts):
        limit = max_sample_rate()
        if limit and opts.frequency > limit:
            raise UsageError(f"frequency {opts.frequency} Hz is above this kernel's "
                             f"perf_event_max_sample_rate ({limit})")
        resolve_pid(opts.tid)
        spec.set_globals(user_stacks_only=opts.user_stacks_only,
                         kernel_stacks_only=opts.kernel_stacks_only,
                         include_idle=opts.include_idle, targ_tid=opts.tid or 0)
        size_stack_maps(spec, opts)
        self._dwarf = self._unwinds_dwarf(opts)
        if self._dwarf:
            spec.set_global("dwarf_user", True)
            # room for ~500 copied stacks while the reader builds a large binary's CFI table;
            # woken a quarter full (or at the 0.1 s poll: a new-process note waits that long,
            # its process is still there), not per sample
            spec.maps["events"].max_entries = DWARF_RING_BYTES
            spec.set_global("wakeup_bytes", DWARF_RING_BYTES // 4)
        self._python = None
        if opts.pid and not opts.no_python and not opts.kernel_stacks_only:
            self._python = pyframes.configure(spec, opts.pid, self.name)

    @staticmethod
    def _unwinds_dwarf(opts):
        if opts.kernel_stacks_only or opts.unwind == "fp":
            return False
        if not unwind.supported():
            if opts.unwind == "dwarf":
                raise UsageError("--unwind dwarf is only available on x86-64")
            return False
        return opts.unwind == "dwarf" or bool(opts.pid)

    def attach(self, obj, opts):
        """Register the CPython target (its _PyRuntime and its version's offsets) for the
        kernel-side frame walk, then sample every CPU."""
        if self._python is not None:
            pyframes.register(obj, self._python)
        for cpu in self._cpus(opts):
            fd = perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, cpu,
                                 freq=opts.frequency)
            obj.attach_perf_event("profile_sample", fd)

    def _cpus(self, args):
        cpus = online_cpus()
        if args.cpu is None:
            return cpus
        if args.cpu not in cpus:
            raise UsageError(f"invalid CPU {args.cpu}: online CPUs are {cpus}")
        return [args.cpu]

    def run(self, args):
        self._cpus(args)
        out = output_for(args)
        spec = self.open(args)
        symbolizer = Symbolizer()
        with StopSignal() as stop, spec.load() as obj:
            unwound = (unwind.UnwoundSamples(symbolizer, obj.record_dtype()) if self._dwarf
                       else None)
            if unwound and args.pid:  # tables not cached yet: built before sampling starts
                unwound.unwinder.prepare(args.pid)
            self.attach(obj, args)
            banner(args, out, self._banner(args))
            elapsed = collect(stop, obj, symbolizer,
                              args.duration if args.duration != FOREVER else None, unwound)
            keys, values = obj.map("counts").read_all()
            # (comm, pid, kernel stack id, user stack id or unwound addresses, python stack
            # id, python thread id, its hold on the interpreter lock, samples)
            rows = [(comm_of(k["comm"]), int(k["pid"]), int(k["kern_stack_id"]),
                     int(k["user_stack_id"]), int(k["py_stack_id"]), int(k["py_tid"]),
                     int(k["py_gil"]), n)
                    for k, n in zip(keys, values.tolist())]
            if unwound:
                rows += [(comm, *key, n) for (comm, *key), n in unwound.counts.items()]
            pairs = decode_stacks(obj, symbolizer, [row[1:4] for row in rows])
            python = pyframes.stacks(obj, self._python, (row[4] for row in rows))
            errors = read_errors(obj)
            drops = obj.map("event_drops").sum_cpus()
        samples = [Sample(comm, pid, n,
                          pyframes.with_frames(pairs[(pid, kid, uid)], python.get(py)),
                          labels=pyframes.gil_labels(tid, gil))
                   for comm, pid, kid, uid, py, tid, gil, n in rows]
        report = self._report(args, samples, errors, elapsed)
        if unwound:
            report.add_summary("unwinding", unwound.summary(drops), describe_unwinding)
        if self._python is not None:
            threads = pyframes.gil_shares(samples)
            report.add_summary("python_threads", threads, pyframes.describe_gil)
        emit(report, args, out)
        return 0

    def _banner(self, args):
        who = (f"PID {args.pid}" if args.pid else f"TID {args.tid}" if args.tid else
               f"cgroup {args.cgroup}" if args.cgroup else "all threads")
        stack = ("user" if args.user_stacks_only else "kernel" if args.kernel_stacks_only
                 else "user + kernel")
        text = f"Sampling at {args.frequency} Hertz of {who} by {stack} stack"
        if args.cpu is not None:
            text += f" on CPU#{args.cpu}"
        if args.duration != FOREVER:
            return text + f" for {args.duration} secs."
        return text + "... Hit Ctrl-C to end."

    def _report(self, args, samples, errors, elapsed):
        period_ns = int(1e9 / args.frequency)
        total = sum(s.value for s in samples)
        return StackReport(
            tool=self.name, samples=samples, errors=errors, unit="samples",
            title="CPU Flame Graph",
            subtitle=f"bpfsight profile: {args.frequency} Hz, {elapsed:.1f} s, {total} samples",
            pprof_types=[("samples", "count"), ("cpu", "nanoseconds")],
            pprof_values=lambda s: [s.value, s.value * period_ns],
            pprof_period=(("cpu", "nanoseconds"), period_ns), duration_s=elapsed)

