"""runqlat: how long runnable tasks wait for a CPU, as a log2 histogram (BCC's runqlat)."""
import time

from ..bpf import features
from ..cpustat import sched_info_kept
from ..report.keyed import render_comm_hists
from ..tool import TIMESTAMP, Tool, disable_programs
from . import _keyed

WAKEUP_STAMPING = ("runqlat_wakeup", "runqlat_wakeup_new", "runqlat_switch",
                   "runqlat_wakeup_raw", "runqlat_wakeup_new_raw", "runqlat_switch_raw")


def choose_programs(spec):
    """Before select_hooks: the one sched_switch program that reads the scheduler's run_delay
    where this kernel keeps sched_info and tp_btf loads, with the task iterator that takes
    every task's baseline where task iterators exist; the wakeup-stamping programs otherwise
    (see bpf/runqlat.bpf.c)."""
    if sched_info_kept() and features.probe("tp_btf").available:
        disable_programs(spec, *WAKEUP_STAMPING)
        spec.set_globals(targ_start_ns=time.monotonic_ns())
        if not features.btf_iter_exists("task"):
            disable_programs(spec, "runqlat_baselines")
    else:
        disable_programs(spec, "runqlat_delay", "runqlat_baselines")


def take_baselines(obj):
    """After attaching: every task's run_delay now, by the task iterator (when loaded)."""
    if "runqlat_baselines" in obj.programs:
        obj.run_iter("runqlat_baselines")


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

    banner = "Tracing run queue latency... Hit Ctrl-C to end."
    intervals = target = True
    options = (TIMESTAMP, *_keyed.OPTIONS)

    def configure(self, spec, opts):
        _keyed.configure(spec, opts)
        choose_programs(spec)

    def sized(self, spec, opts):
        size_maps(spec)

    def attach(self, obj, opts):
        obj.attach_all()
        take_baselines(obj)

    def collect(self, obj, opts):
        return _keyed.collect(obj, opts)

    def render(self, hists, opts, out):
        render_comm_hists(hists, out, _keyed.label(opts))
