"""pidpersec: new tasks per second (BCC's pidpersec)."""
import time

from ..tool import Tool


class Pidpersec(Tool):
    name = "pidpersec"
    summary = "new processes and threads per second"
    description = ("Count new tasks (fork, clone and new threads: every sched_process_fork) per "
                   "interval and print the rate per second, as BCC's pidpersec does. The "
                   "kernel's own count is /proc/stat's `processes`.")
    banner = "Tracing... Ctrl-C to end."
    intervals = True
    default_interval = 1
    spaced = False

    def attach(self, obj, opts):
        obj.attach_all()
        self._last = 0  # a loaded map starts at zero

    def collect(self, obj, opts):
        """One record per interval: new tasks since the last (forks) and per second."""
        now = obj.map("forks").sum_cpus()
        forks, self._last = now - self._last, now
        return [{"time": time.strftime("%H:%M:%S"), "forks": forks,
                 "per_s": round(forks / opts.interval, 2)}]

    def render(self, records, opts, out):
        for r in records:
            out.text(f"{r['time']}: PIDs/sec: {r['per_s']:g}")
