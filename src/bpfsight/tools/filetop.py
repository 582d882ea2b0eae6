"""filetop: top files by reads/writes per interval, per thread (BCC's filetop)."""
import time

from ..fileio import drop_absent_syscalls, file_type, full_path
from ..report.output import top_screen
from ..tool import Option, Tool, flag, positive_int

SORTS = ("all", "reads", "writes", "rbytes", "wbytes")
HEADER = "%-6s %-16s %-6s %-6s %-7s %-7s %1s %s" % (
    "TID", "COMM", "READS", "WRITES", "R_Kb", "W_Kb", "T", "FILE")


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

    target = intervals = True
    default_interval = 1
    spaced = False  # a screen per interval
    options = (
        flag("-a", "--all-files", help="include non-regular file types (sockets, FIFOs, etc)"),
        flag("-C", "--noclear", help="don't clear the screen"),
        Option("-r", "--maxrows", type=positive_int("maxrows"), default=20,
               help="maximum rows to print, default 20"),
        Option("-s", "--sort", default="all", choices=SORTS, help="sort column, default all"))

    def banner_for(self, opts):
        return f"Tracing... Output every {opts.interval} secs. Hit Ctrl-C to end"

    def configure(self, spec, opts):
        spec.set_global("targ_all_files", opts.all_files)
        drop_absent_syscalls(spec)

    def collect(self, obj, opts):
        """The --maxrows busiest rows by --sort, each with the time of the reading."""
        now = time.strftime("%H:%M:%S")
        rows = sorted(rows_of(*obj.map("stats").read_all(delete=True)),
                      key=sort_key(opts.sort), reverse=True)[:opts.maxrows]
        return [{"time": now, **r} for r in rows]

    def render(self, rows, opts, out):
        top_screen(out, opts.noclear)
        out.text(HEADER)
        for r in rows:
            out.text("%-6d %-16s %-6d %-6d %-7d %-7d %1s %s" % (
                r["tid"], r["comm"], r["reads"], r["writes"], r["rbytes"] // 1024,
                r["wbytes"] // 1024, r["type"], r["file"]))
