"""runqlen: run-queue length sampled on every CPU, as a linear histogram (BCC's runqlen)."""
import os

from ..bpf.links import attach_cpu_clock, online_cpus
from ..cpustat import cpu_times
from ..report.histogram import format_linear
from ..tool import TIMESTAMP, Option, Tool, flag, positive_int


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

    banner = "Sampling run queue length... Hit Ctrl-C to end."
    intervals = True
    options = (flag("-C", "--cpus", help="print output for each CPU separately"),
               Option("-f", "--frequency", type=positive_int("frequency"), default=99,
                      help="sample with a certain frequency (Hz, default 99)"),
               flag("-O", "--runqocc", help="report run queue occupancy"),
               TIMESTAMP)

    def attach(self, obj, opts):
        attach_cpu_clock(obj, "runqlen_sample", opts.frequency)
        self._delta = Delta(obj.map("hists"), obj.map("idle_samples"))

    def collect(self, obj, opts):
        """Since the last call: one record for all CPUs, or with -C one per CPU ("cpu"):
        samples, unsampled (idle samples filled in), mean, runqocc (%) and the linear
        histogram as slots [{"len", "count"}]."""
        slots, totals, idle_taken, idle_seconds = self._delta()
        cpus = online_cpus()
        unsampled = fill_unsampled(slots, idle_taken, idle_seconds, opts.frequency, cpus)
        if opts.cpus:
            return [{"cpu": cpu, **_summary(slots[cpu], int(totals[cpu]), unsampled.get(cpu, 0))}
                    for cpu in cpus]
        return [_summary(slots[cpus].sum(axis=0), int(totals[cpus].sum()),
                         sum(unsampled.values()))]

    def render(self, records, opts, out):
        for rec in records:
            cpu = rec.get("cpu")
            counts = [0] * (max((s["len"] for s in rec["slots"]), default=-1) + 1)
            for s in rec["slots"]:
                counts[s["len"]] = s["count"]
            if opts.runqocc:
                out.text("runqocc, CPU %-3d %6.2f%%" % (cpu, rec["runqocc"]) if cpu is not None
                         else "runqocc: %0.2f%%" % rec["runqocc"])
                continue
            if cpu is not None:
                out.text(f"cpu = {cpu}")
            out.text(format_linear(counts, "runqlen"), end="")


def _summary(slots, total, unsampled):
    samples = int(slots.sum())
    return {"samples": samples, "unsampled": unsampled,
            "mean": round(total / max(1, samples), 3), "runqocc": round(occupancy(slots), 2),
            "slots": [{"len": i, "count": int(n)} for i, n in enumerate(slots) if n]}
