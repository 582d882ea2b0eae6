"""filetop: top files by reads/writes per interval, per thread (BCC's filetop)."""
import time

from ..fileio import drop_absent_syscalls, file_type, full_path
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, positive_int, select_hooks)

SORTS = ("all", "reads", "writes", "rbytes", "wbytes")
HEADER = "%-6s %-16s %-6s %-6s %-7s %-7s %1s %s" % (
    "TID", "COMM", "READS", "WRITES", "R_Kb", "W_Kb", "T", "FILE")
CLEAR = "\033[H\033[2J"


def key_dtype():
    import numpy as np
    return np.dtype([("ino", "<u8"), ("dev", "<u4"), ("tid", "<u4")])


def stat_dtype():
    """struct file_stat (bpf/filetop.bpf.c)."""
    import numpy as np
    return np.dtype([("reads", "<u8"), ("writes", "<u8"), ("rbytes", "<u8"), ("wbytes", "<u8"),
                     ("pid", "<u4"), ("fd", "<i4"), ("mode", "<u4"), ("pad", "<u4"),
                     ("comm", "S16"), ("name", "S64")])


def rows_of(keys, values):
    """One plain dict per (thread, file), its full path resolved while the fd may still be open."""
    rows = []
    for k, v in zip(keys, values):
        name = v["name"].decode(errors="replace")
        rows.append({"tid": int(k["tid"]), "pid": int(v["pid"]),
                     "comm": v["comm"].decode(errors="replace"),
                     "reads": int(v["reads"]), "writes": int(v["writes"]),
                     "rbytes": int(v["rbytes"]), "wbytes": int(v["wbytes"]),
                     "type": file_type(int(v["mode"])), "name": name,
                     "file": full_path(int(v["pid"]), int(v["fd"]), int(k["dev"]),
                                       int(k["ino"]), name)})
    return rows


def sort_key(sort):
    if sort == "all":
        return lambda r: r["rbytes"] + r["wbytes"] + r["reads"] + r["writes"]
    return lambda r: r[sort]


class Filetop(Tool):
    name = "filetop"
    summary = "top files by read/write bytes per interval"
    description = (
        "File reads and writes by thread and file (BCC's filetop).\n\n"
        "Counts read/write syscalls (read, pread64, readv, preadv(2) and the write forms) at\n"
        "their exit, with the bytes actually transferred; BCC counts vfs_read/vfs_write calls\n"
        "and the bytes requested. I/O that bypasses these syscalls (mmap, sendfile, splice,\n"
        "io_uring, AIO) is not seen. FILE is the full path while the process still has the\n"
        "file open, else the file's own name. -a adds FIFOs, devices, pipes and sockets (BCC\n"
        "skips the nameless pipes and sockets; here they are named from /proc, \"pipe:[N]\").")

    def add_arguments(self, p):
        p.add_argument("-a", "--all-files", action="store_true",
                       help="include non-regular file types (sockets, FIFOs, etc)")
        p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
        p.add_argument("-r", "--maxrows", type=positive_int("maxrows"), default=20,
                       help="maximum rows to print, default 20")
        p.add_argument("-s", "--sort", default="all", choices=SORTS,
                       help="sort column, default all")
        add_target_args(p)
        add_output_args(p)
        add_interval_args(p, default_interval=1)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("filetop", args, self.name)
        spec.set_global("targ_all_files", args.all_files)
        drop_absent_syscalls(spec)
        select_hooks(spec, self.name)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            stats = obj.map("stats", key=key_dtype, value=stat_dtype)
            out.banner(f"Tracing... Output every {args.interval} secs. Hit Ctrl-C to end")

            def tick():
                rows = sorted(rows_of(*stats.read_all(delete=True)), key=sort_key(args.sort),
                              reverse=True)[:args.maxrows]
                self.show(out, args, rows)

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    def show(self, out, args, rows):
        now = time.strftime("%H:%M:%S")
        out.text("" if args.noclear else CLEAR, end="\n" if args.noclear else "")
        with open("/proc/loadavg") as f:
            out.text("%-8s loadavg: %s" % (now, f.read()))
        out.text(HEADER)
        for r in rows:
            out.text("%-6d %-16s %-6d %-6d %-7d %-7d %1s %s" % (
                r["tid"], r["comm"], r["reads"], r["writes"], r["rbytes"] // 1024,
                r["wbytes"] // 1024, r["type"], r["file"]))
            out.record({"tool": self.name, "time": now, **r})
