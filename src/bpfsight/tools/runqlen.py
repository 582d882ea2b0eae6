"""runqlen: run-queue length sampled on every CPU, as a linear histogram (BCC's runqlen)."""
import os

from ..bpf.links import attach_cpu_clock, online_cpus
from ..cpustat import cpu_times
from ..report.histogram import format_linear, hist_dtype
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, interval_loop,
                    open_spec, output_for, positive_int, timestamp_line)


class Delta:
    """Per-CPU histograms since the previous call, the samples each CPU took in its idle task,
    and each CPU's idle seconds by the kernel's own clock (/proc/stat), read right after the
    map. The kernel's counters only grow: reading and zeroing an array cannot be one step, but
    a difference of snapshots loses no sample."""

    def __init__(self, hists, idle_samples):
        self.hists, self.idle_samples = hists, idle_samples
        self.prev = None  # (slots, total, idle samples) at the last call; None: all zero
        self.prev_idle = _idle_seconds()

    def __call__(self):
        # the raw reads first and together: decoding (numpy's import, the first time) may
        # take a while on a busy machine, and the idle time must cover the same span
        _, values = self.hists.read_all()
        _, idle = self.idle_samples.read_all()
        idle_now = _idle_seconds()
        cur = (values[0]["slots"].astype("int64"), values[0]["total"].astype("int64"),
               idle[0].astype("int64"))  # the arrays' one element, per CPU
        prev, self.prev = self.prev, cur
        idle_seconds = {cpu: s - self.prev_idle.get(cpu, 0.0) for cpu, s in idle_now.items()}
        self.prev_idle = idle_now
        if prev is None:
            return cur[0].copy(), cur[1].copy(), cur[2].copy(), idle_seconds
        return cur[0] - prev[0], cur[1] - prev[1], cur[2] - prev[2], idle_seconds


def _idle_seconds():
    """{cpu: seconds idle since boot}."""
    hz = os.sysconf("SC_CLK_TCK")
    return {cpu: (total - busy) / hz for cpu, (busy, total) in cpu_times().items()}


def fill_unsampled(slots, idle_taken, idle_seconds, freq, cpus):
    """Count the idle samples a CPU did not take as length 0, in place; returns {cpu: how
    many}. Some virtual machines do not run an idle vCPU's cpu-clock timer: left out, the idle
    samples would bias the mean and the occupancy upwards. How many went missing comes from
    the CPU's idle time (/proc/stat) less the samples it took while idle, so time the CPU was
    busy is never filled in, however late this runs. Where every sample arrives this changes
    nothing (up to one sample of rounding)."""
    filled = {}
    for cpu in cpus:
        missing = round(idle_seconds.get(cpu, 0.0) * freq) - int(idle_taken[cpu])
        if missing > 0:
            slots[cpu][0] += missing
            filled[cpu] = missing
    return filled


def occupancy(slots):
    """Share of samples with at least one task waiting, in percent."""
    samples = int(slots.sum())
    return 100.0 * int(slots[1:].sum()) / max(1, samples)


class Runqlen(Tool):
    name = "runqlen"
    summary = "sample run-queue length per CPU as a histogram"
    description = ("Summarize scheduler run queue length as a histogram (BCC's runqlen): a "
                   "cpu-clock event samples each CPU at FREQUENCY Hz and reads its run queue's "
                   "nr_running (all scheduling classes), less the running task.\n"
                   "Samples a CPU does not take while idle (some VMs stop an idle vCPU's timer) "
                   "are counted as length 0, since an idle CPU has no queue: how many is the "
                   "CPU's idle time (/proc/stat) times FREQUENCY, less the samples it took in "
                   "its idle task; --json reports them as 'unsampled'.")

    def add_arguments(self, p):
        p.add_argument("-C", "--cpus", action="store_true",
                       help="print output for each CPU separately")
        p.add_argument("-f", "--frequency", type=positive_int("frequency"), default=99,
                       help="sample with a certain frequency (Hz, default 99)")
        p.add_argument("-O", "--runqocc", action="store_true", help="report run queue occupancy")
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("runqlen", args, self.name)
        with StopSignal() as stop, spec.load() as obj:
            attach_cpu_clock(obj, "runqlen_sample", args.frequency)
            delta = Delta(obj.map("hists", key="<u4", value=hist_dtype),
                          obj.map("idle_samples", key="<u4", value="<u8"))
            out.banner("Sampling run queue length... Hit Ctrl-C to end.")

            def tick():
                slots, totals, idle_taken, idle_seconds = delta()
                cpus = online_cpus()
                unsampled = fill_unsampled(slots, idle_taken, idle_seconds, args.frequency, cpus)
                out.text()
                timestamp_line(args, out)
                if args.cpus:
                    for cpu in cpus:
                        self.report(out, args, cpu, slots[cpu], int(totals[cpu]),
                                    unsampled.get(cpu, 0))
                else:
                    self.report(out, args, None, slots[cpus].sum(axis=0),
                                int(totals[cpus].sum()), sum(unsampled.values()))

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    def report(self, out, args, cpu, slots, total, unsampled):
        samples = int(slots.sum())
        rec = {"tool": self.name, "samples": samples, "unsampled": unsampled,
               "mean": round(total / max(1, samples), 3), "runqocc": round(occupancy(slots), 2),
               "slots": [{"len": i, "count": int(n)} for i, n in enumerate(slots) if n]}
        if cpu is not None:
            rec = {"cpu": cpu, **rec}
        out.record(rec)
        if args.runqocc:
            out.text("runqocc, CPU %-3d %6.2f%%" % (cpu, occupancy(slots)) if cpu is not None
                     else "runqocc: %0.2f%%" % occupancy(slots))
            return
        if cpu is not None:
            out.text(f"cpu = {cpu}")
        out.text(format_linear([int(n) for n in slots], "runqlen"), end="")
