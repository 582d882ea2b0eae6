"""vfsstat: file-system calls per second by family (BCC's vfsstat), counted at the syscalls."""
import time

from ..fileio import drop_absent_syscalls
from ..tool import FOREVER, Option, Tool, positive_int

COLUMNS = ("READ", "WRITE", "FSYNC", "OPEN", "CREATE")  # enum stat_type in bpf/vfsstat.bpf.c
APPROX = "syscalls, not VFS calls"


def totals(stats):
    """Cumulative count per family, summed over CPUs."""
    keys, values = stats.read_all()
    sums = dict(zip(keys.tolist(), values.sum(axis=1).tolist()))
    return [int(sums.get(i, 0)) for i in range(len(COLUMNS))]


class Vfsstat(Tool):
    name = "vfsstat"
    summary = "count file-system syscalls by family per interval (approx)"
    description = (
        "File-system calls per second by family (BCC's vfsstat), approx: it counts SYSCALLS,\n"
        "not VFS calls, because the VFS functions need kprobes.\n\n"
        "READ: read, pread64, readv, preadv(2); WRITE: write, pwrite64, writev, pwritev(2);\n"
        "FSYNC: fsync, fdatasync; OPEN: open, openat, openat2, creat, open_by_handle_at;\n"
        "CREATE: creat and opens with O_CREAT (whether or not a file was created).\n"
        "Unlike BCC this counts reads/writes of pipes and sockets too, and misses I/O the\n"
        "kernel does on its own behalf (io_uring, nfsd, sendfile/splice).")

    banner = f"Tracing file-system syscalls (approx: {APPROX})... Hit Ctrl-C to end."
    target = intervals = True
    default_interval = 1
    spaced = False

    def header_for(self, opts):
        return "%-8s  " % "TIME" + "".join(" %6s/s" % c for c in COLUMNS)

    def configure(self, spec, opts):
        drop_absent_syscalls(spec)

    def attach(self, obj, opts):
        obj.attach_all()
        self._last = [0] * len(COLUMNS)  # a loaded map starts at zero: no baseline read

    def collect(self, obj, opts):
        """One record per interval: the calls of each family since the last (counts), with
        the nominal interval they are divided by for the per-second rates."""
        now = totals(obj.map("stats"))
        counts = [n - p for n, p in zip(now, self._last)]
        self._last = now
        return [{"time": time.strftime("%H:%M:%S"), "interval_s": opts.interval,
                 "approx": APPROX, "counts": dict(zip(map(str.lower, COLUMNS), counts))}]

    def render(self, records, opts, out):
        """Per-second rates over the nominal interval, as BCC prints them (a last, partial
        interval cut short by Ctrl-C is still divided by the full interval)."""
        for rec in records:
            out.text("%-8s: " % rec["time"] + "".join(" %8d" % (n // opts.interval)
                                                      for n in rec["counts"].values()))


VFS_FUNCTIONS = ("vfs_read", "vfs_write", "vfs_fsync", "vfs_open", "vfs_create")  # COLUMNS'


class Vfscount(Vfsstat):
    """BCC's vfscount: counts per VFS function until Ctrl-C (or a duration), here per
    syscall family under the VFS function each family enters (approx)."""
    name = "vfscount"
    object_name = "vfsstat"
    summary = "count file-system syscalls under the VFS function they enter (approx)"
    description = (
        "Count VFS calls until Ctrl-C (BCC's vfscount), approx: the SYSCALLS that enter\n"
        "vfs_read, vfs_write, vfs_fsync, vfs_open and vfs_create are counted (the VFS\n"
        "functions themselves need kprobes), as vfsstat's families.")
    banner = f"Tracing... Ctrl-C to end (approx: {APPROX})."
    intervals = False
    options = (Option("duration", nargs="?", type=positive_int("duration"),
                      help="trace this many seconds (default: until Ctrl-C)"),)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(interval=FOREVER, count=1)

    def run(self, args):
        if args.duration:
            args.interval = args.duration
        return super().run(args)

    def header_for(self, opts):
        return None

    def render(self, records, opts, out):
        out.text("%-26s %8s" % ("FUNC", "COUNT"))
        for rec in records:
            counts = sorted(zip(VFS_FUNCTIONS, rec["counts"].values()), key=lambda fc: fc[1])
            for func, n in counts:
                if n:
                    out.text("%-26s %8d" % (func, n))
