"""biotop: top processes by block I/O per interval (BCC's biotop)."""
from ..blockio import DiskNames, choose_submitter_hooks
from ..report.output import top_screen
from ..tool import Option, Tool, flag, positive_int

SORT_KEYS = {"bytes": lambda r: r["bytes"], "io": lambda r: r["io"],
             "time": lambda r: r["avg_ms"] * r["io"]}


def rows_of(keys, values, disk):
    """One dict per (process, direction, disk) from the kernel's counts."""
    rows = []
    for k, v in zip(keys, values):
        major, minor, io = int(k["major"]), int(k["minor"]), int(v["io"])
        rows.append({"pid": int(k["pid"]), "comm": k["comm"].decode(errors="replace"),
                     "dir": "W" if k["rwflag"] else "R", "major": major, "minor": minor,
                     "disk": disk((major << 20) | minor, "?"), "io": io,
                     "bytes": int(v["bytes"]), "kbytes": int(v["bytes"]) // 1024,
                     "avg_ms": int(v["ns"]) / 1e6 / io if io else 0.0})
    return rows


class Biotop(Tool):
    name = "biotop"
    summary = "top processes by block I/O per interval"
    description = (
        "Block device I/O by process, top style: every interval the processes with the most\n"
        "I/O (BCC's biotop). AVGms is the average time from issue to the driver until\n"
        "completion. The process is the one in whose context the request entered the\n"
        "block layer: page-cache writeback shows as the flusher kworker; I/O whose start\n"
        "was not seen is summed under PID 0.")

    target = intervals = True
    default_interval = 1
    spaced = False  # a screen per interval
    options = (
        flag("-C", "--noclear", help="don't clear the screen"),
        Option("-r", "--maxrows", type=positive_int("maxrows"), default=20,
               help="maximum rows to print, default 20"),
        Option("-s", "--sort", choices=sorted(SORT_KEYS), default="bytes",
               help="sort column, default bytes"))

    def banner_for(self, opts):
        return f"Tracing... Output every {opts.interval} secs. Hit Ctrl-C to end"

    def configure(self, spec, opts):
        choose_submitter_hooks(spec)

    def attach(self, obj, opts):
        obj.attach_all()
        self._disks = DiskNames()

    def collect(self, obj, opts):
        """The --maxrows busiest rows by --sort: pid, comm, dir, major, minor, disk, io,
        kbytes, avg_ms."""
        rows = rows_of(*obj.map("counts").read_all(delete=True), self._disks)
        rows.sort(key=SORT_KEYS[opts.sort], reverse=True)
        return rows[:opts.maxrows]

    def render(self, rows, opts, out):
        top_screen(out, opts.noclear)
        out.text("%-7s %-16s %1s %-3s %-3s %-8s %5s %7s %6s" % (
            "PID", "COMM", "D", "MAJ", "MIN", "DISK", "I/O", "Kbytes", "AVGms"))
        for r in rows:
            out.text("%-7d %-16s %1s %-3d %-3d %-8s %5d %7d %6.2f" % (
                r["pid"], r["comm"], r["dir"], r["major"], r["minor"], r["disk"], r["io"],
                r["kbytes"], r["avg_ms"]))
