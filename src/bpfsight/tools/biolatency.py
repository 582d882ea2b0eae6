"""biolatency: block I/O latency as log2 histograms, optionally per disk or per flag set."""
from ..blockio import disk_dev, disk_names
from ..report.histogram import Log2Histogram, format_log2
from ..tool import TIMESTAMP, Option, Tool, disable_programs, flag

# enum req_op and req_flag_bits of this kernel's blk_types.h (stable uapi-like layout)
REQ_OPS = {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase",
           7: "ZoneAppend", 9: "WriteZeroes", 10: "ZoneOpen", 11: "ZoneClose",
           12: "ZoneFinish", 13: "ZoneReset", 15: "ZoneResetAll", 34: "DrvIn", 35: "DrvOut"}
REQ_FLAGS = [(1 << 11, "Sync"), (1 << 12, "Meta"), (1 << 13, "Prio"), (1 << 14, "NoMerge"),
             (1 << 15, "Idle"), (1 << 16, "Integrity"), (1 << 17, "FUA"), (1 << 18, "Preflush"),
             (1 << 19, "RAHead"), (1 << 20, "Background"), (1 << 21, "NoWait")]


def flag_names(cmd_flags):
    names = [REQ_OPS.get(cmd_flags & 0xFF, f"Op{cmd_flags & 0xFF}")]
    names += [n for bit, n in REQ_FLAGS if cmd_flags & bit]
    return "-".join(names)


class Biolatency(Tool):
    name = "biolatency"
    summary = "summarize block device I/O latency as a histogram"
    banner = "Tracing block device I/O... Hit Ctrl-C to end."
    intervals = True
    options = (TIMESTAMP,
               flag("-Q", "--queued", help="include OS queued time in I/O time"),
               flag("-m", "--milliseconds", help="millisecond histogram"),
               flag("-D", "--disk", help="print a histogram per disk device"),
               flag("-F", "--flag", help="print a histogram per set of I/O flags"),
               Option("-d", "--disk-name", metavar="DISK", help="trace this disk only"))

    def configure(self, spec, opts):
        spec.set_globals(targ_per_disk=opts.disk, targ_per_flag=opts.flag,
                         targ_queued=opts.queued, targ_ms=opts.milliseconds)
        if opts.disk_name:
            spec.set_global("targ_dev", disk_dev(opts.disk_name))
        if not opts.queued:  # the clock starts at issue: no insert hook
            disable_programs(spec, "biolat_insert", "biolat_insert_raw")

    def collect(self, obj, opts):
        """One Log2Histogram per disk / flag set (labels "disk", "flags") since the last call,
        in key order."""
        keys, values = obj.map("hists").read_all(delete=True)
        names = disk_names() if opts.disk else {}
        unit = "msecs" if opts.milliseconds else "usecs"
        hists = []
        for key, val in sorted(zip(keys, values), key=lambda kv: kv[0].tolist()):
            labels = {}
            if opts.disk:
                labels["disk"] = names.get(int(key["dev"]), "Unknown")
            if opts.flag:
                labels["flags"] = flag_names(int(key["cmd_flags"]))
            hists.append(Log2Histogram.from_record(val, unit, **labels))
        return hists

    def render(self, hists, opts, out):
        for h in hists:
            if "disk" in h.labels:
                out.text(f"\ndisk = {h.labels['disk']}\t", end="")
            if "flags" in h.labels:
                out.text(f"\nflags = {h.labels['flags']}", end="")
            if h.labels:
                out.text()
            out.text(format_log2(h), end="")
