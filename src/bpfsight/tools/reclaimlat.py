"""reclaimlat: time allocating tasks stall in memory reclaim, as log2 histograms: global direct
reclaim (the system is short of memory) and memory-cgroup reclaim (a cgroup hit its limit),
optionally per process, with the pages each reclaimed."""
from ..bpf import features
from ..report.grouped import comm_of, emit_histograms
from ..report.histogram import Log2Histogram, hist_dtype
from ..taskstart import use_task_storage
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, select_hooks, timestamp_line)

KINDS = {0: "direct", 1: "memcg"}
MEMCG_PROGS = ("reclaimlat_memcg_begin", "reclaimlat_memcg_end",
               "reclaimlat_memcg_begin_raw", "reclaimlat_memcg_end_raw")


def value_dtype():
    import numpy as np
    return np.dtype([("h", hist_dtype()), ("reclaimed", "<u8"), ("comm", "S16")])


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

    def add_arguments(self, p):
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
        add_target_args(p)
        p.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        out = output_for(args)
        unit = "msecs" if args.milliseconds else "usecs"
        spec = open_spec("reclaimlat", args, self.name)
        spec.set_globals(targ_per_process=args.pids, targ_ms=args.milliseconds)
        if not has_memcg_hooks():  # a kernel without memory cgroups: direct reclaim only
            for prog in MEMCG_PROGS:
                spec.programs[prog].autoload = False
        select_hooks(spec, self.name)
        use_task_storage(spec, "reclaimlat_direct_begin")
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            reclaims = obj.map("reclaims", key=[("tgid", "<u4"), ("kind", "<u4")],
                               value=value_dtype)
            out.banner("Tracing reclaim stalls... Hit Ctrl-C to end.")

            def tick():
                keys, values = reclaims.read_all(delete=True)
                out.text()
                timestamp_line(args, out)
                order = sorted(zip(keys.tolist(), values), key=lambda kv: kv[0])
                emit_histograms(out, self.name, [self._entry(k, v, unit, args.pids)
                                                 for k, v in order])

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    @staticmethod
    def _entry(key, val, unit, per_process):
        tgid, kind = key
        labels = {"kind": KINDS.get(kind, str(kind)), "reclaimed_pages": int(val["reclaimed"])}
        title = f"kind = {labels['kind']}"
        if per_process:
            labels.update(pid=tgid, comm=comm_of(val["comm"]))
            title = f"pid = {tgid} {labels['comm']}  {title}"
        title += f"  reclaimed = {labels['reclaimed_pages']} pages"
        return title, Log2Histogram.from_record(val["h"], unit, **labels)
