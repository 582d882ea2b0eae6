"""runqlat: how long runnable tasks wait for a CPU, as a log2 histogram (BCC's runqlat)."""

from ..bpf import features
from ..cpustat import sched_info_kept
from ..report import keyed
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    disable_programs, interval_loop, open_spec, output_for, select_hooks,
                    timestamp_line)

WAKEUP_STAMPING = ("runqlat_wakeup", "runqlat_wakeup_new", "runqlat_switch",
                   "runqlat_wakeup_raw", "runqlat_wakeup_new_raw", "runqlat_switch_raw")


def choose_programs(spec):
    """Before select_hooks: the one sched_switch program that reads the scheduler's run_delay
    where this kernel keeps sched_info and tp_btf loads; the wakeup-stamping programs otherwise
    (see bpf/runqlat.bpf.c)."""
    if sched_info_kept() and features.probe("tp_btf").available:
        disable_programs(spec, *WAKEUP_STAMPING)
    else:
        disable_programs(spec, "runqlat_delay")


def size_maps(spec):
    """After select_hooks: the pid-keyed start times are only for the raw_tp fallback."""
    if not spec.programs["runqlat_switch_raw"].autoload:
        spec.maps["start_by_pid"].max_entries = 1


class Runqlat(Tool):
    name = "runqlat"
    summary = "summarize run-queue (scheduler) latency as a histogram"
    description = (
        "Summarize run-queue (scheduler) latency as a histogram (BCC's runqlat): the time from\n"
        "a task becoming runnable (woken, or preempted) to it running.\n\n"
        "Where the kernel keeps schedstat (/proc/PID/schedstat exists), each wait is the\n"
        "scheduler's own figure, the growth of the task's run_delay, read at sched_switch\n"
        "alone: no wakeup hooks, no clock reads. A wait is recorded when the task next leaves\n"
        "the CPU (BCC records it when the task gets the CPU). Elsewhere bpfsight stamps\n"
        "wakeups, as BCC does.")

    def add_arguments(self, p):
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
        add_target_args(p)
        p.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
        p.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        out = output_for(args)
        unit = "msecs" if args.milliseconds else "usecs"
        spec = open_spec("runqlat", args, self.name)
        keyed.configure(spec, args)
        choose_programs(spec)
        select_hooks(spec, self.name)
        size_maps(spec)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            out.banner("Tracing run queue latency... Hit Ctrl-C to end.")
            hists = obj.map("hists", key="<u4", value=keyed.comm_hist_dtype)
            label = "pid" if args.pids else "tid" if args.tids else None

            def tick():
                keys, values = hists.drain()
                out.text()
                timestamp_line(args, out)
                keyed.print_comm_hists(out, self.name, keys, values, unit, label)

            interval_loop(stop, args.interval, args.count, tick)
        return 0
