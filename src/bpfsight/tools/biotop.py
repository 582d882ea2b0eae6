"""biotop: top processes by block I/O per interval (BCC's biotop)."""
from ..blockio import DiskNames, choose_submitter_hooks
from ..report.output import clock_hms
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, positive_int, select_hooks)

CLEAR = "\033[H\033[2J"
SORT_KEYS = {"bytes": lambda r: r["bytes"], "io": lambda r: r["io"],
             "time": lambda r: r["avg_ms"] * r["io"]}


def key_dtype():
    import numpy as np
    return np.dtype([("pid", "<u4"), ("rwflag", "<u4"), ("major", "<u4"), ("minor", "<u4"),
                     ("comm", "S16")])


def val_dtype():
    import numpy as np
    return np.dtype([("bytes", "<u8"), ("ns", "<u8"), ("io", "<u8")])


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

    def add_arguments(self, p):
        p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
        p.add_argument("-r", "--maxrows", type=positive_int("maxrows"), default=20,
                       help="maximum rows to print, default 20")
        p.add_argument("-s", "--sort", choices=sorted(SORT_KEYS), default="bytes",
                       help="sort column, default bytes")
        add_target_args(p, pid_help="trace I/O submitted by this PID only")
        add_output_args(p)
        add_interval_args(p, default_interval=1)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("biotop", args, self.name)
        choose_submitter_hooks(spec)
        select_hooks(spec, self.name)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            counts = obj.map("counts", key=key_dtype, value=val_dtype)
            disk = DiskNames()
            out.banner(f"Tracing... Output every {args.interval} secs. Hit Ctrl-C to end")

            def tick():
                rows = rows_of(*counts.read_all(delete=True), disk)
                rows.sort(key=SORT_KEYS[args.sort], reverse=True)
                self.show(args, out, rows[:args.maxrows])

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    def show(self, args, out, rows):
        if args.noclear:
            out.text()
        else:
            out.text(CLEAR, end="")
        with open("/proc/loadavg") as f:
            out.text("%-8s loadavg: %s" % (clock_hms(), f.read()))
        out.text("%-7s %-16s %1s %-3s %-3s %-8s %5s %7s %6s" % (
            "PID", "COMM", "D", "MAJ", "MIN", "DISK", "I/O", "Kbytes", "AVGms"))
        for r in rows:
            out.record({"tool": self.name, **r})
            out.text("%-7d %-16s %1s %-3d %-3d %-8s %5d %7d %6.2f" % (
                r["pid"], r["comm"], r["dir"], r["major"], r["minor"], r["disk"], r["io"],
                r["kbytes"], r["avg_ms"]))
