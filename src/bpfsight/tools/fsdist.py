"""fsdist: latency of reads, writes, opens and fsyncs on one file-system type as histograms
(BCC's ext4dist, xfsdist, btrfsdist: `ext4dist` is `fsdist -t ext4`, `fsdist -t xfs` is
xfsdist)."""
from ..errors import UsageError
from ..fileio import drop_absent_syscalls
from ..report.histogram import Log2Histogram, format_log2
from ..tool import TIMESTAMP, Option, Tool, flag

MAGIC = {"ext4": 0xEF53, "ext3": 0xEF53, "ext2": 0xEF53, "xfs": 0x58465342,
         "btrfs": 0x9123683E, "tmpfs": 0x01021994, "nfs": 0x6969, "f2fs": 0xF2F52010,
         "zfs": 0x2FC12FC1, "overlay": 0x794C7630}
OPS = ("read", "write", "open", "fsync")  # the index order of the kernel's hists


class Fsdist(Tool):
    name = "fsdist"
    summary = "file-system read/write/open/fsync latency histograms (ext4dist, xfsdist, ...)"
    object_name = "fsdist"
    fs = None  # a fixed type: ext4dist
    description = (
        "Summarize the latency of reads, writes, opens and fsyncs on one file-system type as\n"
        "histograms (BCC's ext4dist/xfsdist/btrfsdist). BCC kprobes the file system's own\n"
        "functions; here the syscalls are timed from enter to exit (approx: the syscall's own\n"
        "microseconds are included) and kept when their file is on a file system of the type\n"
        "(its superblock magic). Page-cache hits are in it, as in BCC. A failed open is not\n"
        "counted (no file tells its file system).")
    target = intervals = True
    options = (
        Option("-t", "--type", choices=sorted(MAGIC), default="ext4",
               help="file-system type (default ext4)"),
        flag("-m", "--milliseconds", help="milliseconds histogram"),
        TIMESTAMP)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        if self.fs:
            parser.set_defaults(type=self.fs)

    def banner_for(self, opts):
        return f"Tracing {opts.type} operation latency... Hit Ctrl-C to end."

    def configure(self, spec, opts):
        if self.fs and opts.type != self.fs:
            raise UsageError(f"{self.name} traces {self.fs}: use fsdist -t {opts.type}")
        spec.set_globals(targ_magic=MAGIC[opts.type], targ_ms=opts.milliseconds)
        drop_absent_syscalls(spec)

    def collect(self, obj, opts):
        keys, values = obj.map("hists").read_all(delete=True)
        unit = "msecs" if opts.milliseconds else "usecs"
        return [Log2Histogram.from_record(v, unit, operation=OPS[int(k)])
                for k, v in sorted(zip(keys, values), key=lambda kv: int(kv[0]))]

    def render(self, hists, opts, out):
        for h in hists:
            out.text(f"\noperation = {h.labels['operation']}")
            out.text(format_log2(h), end="")


class Ext4dist(Fsdist):
    name, fs = "ext4dist", "ext4"
    summary = "ext4 read/write/open/fsync latency histograms"
