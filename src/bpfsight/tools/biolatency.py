"""biolatency: block I/O latency as log2 histograms, optionally per disk or per flag set."""
from ..report.histogram import Log2Histogram, format_log2, hist_dtype
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, interval_loop,
                    open_spec, output_for, select_hooks, timestamp_line)
from ..errors import UsageError

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


def disk_names():
    """{MKDEV(major, minor) as the kernel encodes it: name} from /proc/diskstats."""
    names = {}
    with open("/proc/diskstats") as f:
        for line in f:
            major, minor, name = line.split()[:3]
            names[(int(major) << 20) | int(minor)] = name
    return names


def disk_dev(name):
    for dev, n in disk_names().items():
        if n == name:
            return dev
    raise UsageError(f"no disk named {name!r} in /proc/diskstats")


def key_dtype():
    import numpy as np
    return np.dtype([("dev", "<u4"), ("cmd_flags", "<u4")])


class Biolatency(Tool):
    name = "biolatency"
    summary = "summarize block device I/O latency as a histogram"

    def add_arguments(self, p):
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-Q", "--queued", action="store_true", help="include OS queued time in I/O time")
        p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
        p.add_argument("-D", "--disk", action="store_true", help="print a histogram per disk device")
        p.add_argument("-F", "--flag", action="store_true", help="print a histogram per set of I/O flags")
        p.add_argument("-d", "--disk-name", metavar="DISK", help="trace this disk only")
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        out = output_for(args)
        unit = "msecs" if args.milliseconds else "usecs"
        spec = open_spec("biolatency", args, self.name)
        spec.set_globals(targ_per_disk=args.disk, targ_per_flag=args.flag,
                         targ_queued=args.queued, targ_ms=args.milliseconds)
        if args.disk_name:
            spec.set_global("targ_dev", disk_dev(args.disk_name))
        if not args.queued:
            spec.programs["biolat_insert"].autoload = False
            spec.programs["biolat_insert_raw"].autoload = False
        select_hooks(spec, self.name)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            out.banner("Tracing block device I/O... Hit Ctrl-C to end.")
            hists = obj.map("hists", key=key_dtype, value=hist_dtype)

            def tick():
                keys, values = hists.read_all(delete=True)
                names = disk_names() if args.disk else {}
                out.text()
                timestamp_line(args, out)
                for key, val in sorted(zip(keys, values), key=lambda kv: kv[0].tolist()):
                    labels = {}
                    if args.disk:
                        labels["disk"] = names.get(int(key["dev"]), "Unknown")
                        out.text(f"\ndisk = {labels['disk']}\t", end="")
                    if args.flag:
                        labels["flags"] = flag_names(int(key["cmd_flags"]))
                        out.text(f"\nflags = {labels['flags']}", end="")
                    if labels:
                        out.text()
                    h = Log2Histogram.from_record(val, unit, **labels)
                    out.text(format_log2(h), end="")
                    out.record({"tool": self.name, **h.to_dict()})

            interval_loop(stop, args.interval, args.count, tick)
        return 0
