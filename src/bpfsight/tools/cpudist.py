"""cpudist: time per on-CPU (or off-CPU) slice as a log2 histogram (BCC's cpudist)."""
import time

from ..cpustat import sched_info_kept
from ..report import keyed
from ..taskstart import use_task_storage
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, select_hooks, timestamp_line)


class Cpudist(Tool):
    name = "cpudist"
    summary = "on-CPU (or off-CPU) time per task slice as a histogram"
    description = ("Summarize on-CPU time per task as a histogram (BCC's cpudist), from "
                   "sched:sched_switch.\n"
                   "Unlike BCC, every on-CPU slice is counted, also those that end because the "
                   "task blocks or exits (BCC counts only preempted slices), so the histogram's "
                   "total is the task's CPU time. Off-CPU (-O) slices include time spent "
                   "runnable but waiting for a CPU.")

    def add_arguments(self, p):
        p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
        p.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
        p.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
        add_target_args(p)
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        out = output_for(args)
        unit = "msecs" if args.milliseconds else "usecs"
        spec = open_spec("cpudist", args, self.name)
        spec.set_globals(targ_offcpu=args.offcpu, sched_info_kept=sched_info_kept(),
                         targ_since=time.monotonic_ns())
        keyed.configure(spec, args)
        select_hooks(spec, self.name)
        use_task_storage(spec, "cpudist_switch")
        label = "pid" if args.pids else "tid" if args.tids else None
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            hists = obj.map("hists", key="<u4", value=keyed.comm_hist_dtype)
            out.banner(f"Tracing {'off' if args.offcpu else 'on'}-CPU time... Hit Ctrl-C to end.")

            def tick():
                keys, values = hists.drain()
                out.text()
                timestamp_line(args, out)
                keyed.print_comm_hists(out, self.name, keys, values, unit, label)

            interval_loop(stop, args.interval, args.count, tick)
        return 0
