"""bitesize: block I/O request sizes as log2 histograms of Kbytes per process (BCC's bitesize)."""
from ..blockio import choose_submitter_hooks, disk_dev
from ..report.grouped import comm_of, render_histograms
from ..report.histogram import Log2Histogram
from ..target import pid_arg
from ..tool import TIMESTAMP, Option, Tool


class Bitesize(Tool):
    name = "bitesize"
    summary = "block I/O request size as a histogram per process"
    description = ("Summarize block device I/O size (Kbytes) as a histogram per process name "
                   "(BCC's bitesize), at block_rq_issue. The process is the one that submitted "
                   "the request, as biotop and biosnoop show it: page-cache writeback is the "
                   "flusher kworker's.")
    banner = "Tracing block device I/O... Hit Ctrl-C to end."
    intervals = True
    options = (TIMESTAMP,
               Option("-c", "--comm", help="trace this process name only (its first 15 "
                                           "characters, as the kernel keeps them)"),
               Option("-d", "--disk", metavar="DISK", help="trace this disk only"),
               Option("-p", "--pid", type=pid_arg, help="trace this PID only"),
               Option("--cgroup", metavar="PATH",
                      help="trace this cgroup v2 (and its descendants) only"))

    def configure(self, spec, opts):
        if opts.disk:
            spec.set_global("targ_dev", disk_dev(opts.disk))
        if opts.comm:
            spec.set_global("targ_comm", opts.comm.encode()[:15])
        choose_submitter_hooks(spec)

    def collect(self, obj, opts):
        """A Log2Histogram of request Kbytes per process name (label comm), busiest first."""
        keys, values = obj.map("hists").read_all(delete=True)
        hists = []
        for key, val in zip(keys, values):
            comm = comm_of(key["comm"])
            h = Log2Histogram.from_record(val, "Kbytes", comm=comm)
            h.title = f"Process Name = {comm}"
            hists.append(h)
        return sorted(hists, key=lambda h: -h.count)

    def render(self, hists, opts, out):
        render_histograms(out, hists)
