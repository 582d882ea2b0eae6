"""cpudist: time per on-CPU (or off-CPU) slice as a log2 histogram (BCC's cpudist)."""
import time

from ..cpustat import sched_info_kept
from ..report.keyed import render_comm_hists
from ..taskstart import use_task_storage
from ..tool import TIMESTAMP, Tool, flag
from . import _keyed


class Cpudist(Tool):
    name = "cpudist"
    summary = "on-CPU (or off-CPU) time per task slice as a histogram"
    description = ("Summarize on-CPU time per task as a histogram (BCC's cpudist), from "
                   "sched:sched_switch.\n"
                   "Unlike BCC, every on-CPU slice is counted, also those that end because the "
                   "task blocks or exits (BCC counts only preempted slices), so the histogram's "
                   "total is the task's CPU time. Off-CPU (-O) slices include time spent "
                   "runnable but waiting for a CPU.")

    intervals = target = True
    options = (flag("-O", "--offcpu", help="measure off-CPU time"), TIMESTAMP, *_keyed.OPTIONS)

    def banner_for(self, opts):
        return f"Tracing {'off' if opts.offcpu else 'on'}-CPU time... Hit Ctrl-C to end."

    def configure(self, spec, opts):
        spec.set_globals(targ_offcpu=opts.offcpu, sched_info_kept=sched_info_kept(),
                         targ_since=time.monotonic_ns())
        _keyed.configure(spec, opts)

    def sized(self, spec, opts):
        use_task_storage(spec, "cpudist_switch")

    def collect(self, obj, opts):
        return _keyed.collect(obj, opts)

    def render(self, hists, opts, out):
        render_comm_hists(hists, out, _keyed.label(opts))
