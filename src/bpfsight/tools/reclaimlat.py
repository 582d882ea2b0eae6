"""reclaimlat: time allocating tasks stall in memory reclaim, as log2 histograms: global direct
reclaim (the system is short of memory) and memory-cgroup reclaim (a cgroup hit its limit),
optionally per process, with the pages each reclaimed."""
from ..bpf import features
from ..report.grouped import comm_of, render_histograms
from ..report.histogram import Log2Histogram
from ..taskstart import use_task_storage
from ..tool import TIMESTAMP, Tool, disable_programs, flag

KINDS = {0: "direct", 1: "memcg"}
MEMCG_PROGS = ("reclaimlat_memcg_begin", "reclaimlat_memcg_end",
               "reclaimlat_memcg_begin_raw", "reclaimlat_memcg_end_raw")


def has_memcg_hooks():
    return (features.btf_tracepoint_exists("mm_vmscan_memcg_reclaim_begin")
            or features.tracepoint_exists("vmscan", "mm_vmscan_memcg_reclaim_begin"))


class Reclaimlat(Tool):
    name = "reclaimlat"
    summary = "direct reclaim stall latency as a histogram"
    description = ("Summarize how long allocating tasks stall in memory reclaim "
                   "(vmscan:mm_vmscan_direct_reclaim_begin/end for global direct reclaim, "
                   "mm_vmscan_memcg_reclaim_begin/end for a cgroup at its limit) as histograms "
                   "per kind, with pages reclaimed. kswapd's background reclaim is not a stall "
                   "and is not counted.")

    banner = "Tracing reclaim stalls... Hit Ctrl-C to end."
    intervals = target = True
    options = (TIMESTAMP, flag("-m", "--milliseconds", help="millisecond histogram"),
               flag("-P", "--pids", help="print a histogram per process ID"))

    def configure(self, spec, opts):
        spec.set_globals(targ_per_process=opts.pids, targ_ms=opts.milliseconds)
        if not has_memcg_hooks():  # a kernel without memory cgroups: direct reclaim only
            disable_programs(spec, *MEMCG_PROGS)

    def sized(self, spec, opts):
        use_task_storage(spec, "reclaimlat_direct_begin")

    def collect(self, obj, opts):
        """A titled Log2Histogram per kind (and process, with -P), labelled kind,
        reclaimed_pages (and pid, comm)."""
        keys, values = obj.map("reclaims").read_all(delete=True)
        unit = "msecs" if opts.milliseconds else "usecs"
        return [self._hist(k, v, unit, opts.pids)
                for k, v in sorted(zip(keys.tolist(), values), key=lambda kv: kv[0])]

    def render(self, hists, opts, out):
        render_histograms(out, hists)

    @staticmethod
    def _hist(key, val, unit, per_process):
        tgid, kind = key
        labels = {"kind": KINDS.get(kind, str(kind)), "reclaimed_pages": int(val["reclaimed"])}
        title = f"kind = {labels['kind']}"
        if per_process:
            labels.update(pid=tgid, comm=comm_of(val["comm"]))
            title = f"pid = {tgid} {labels['comm']}  {title}"
        hist = Log2Histogram.from_record(val["h"], unit, **labels)
        hist.title = title + f"  reclaimed = {labels['reclaimed_pages']} pages"
        return hist
