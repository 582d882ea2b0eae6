"""biosnoop: every block I/O with its submitter, disk, op, sector, size and latency
(libbpf-tools' biosnoop)."""
import time

from ..blockio import DiskNames, choose_submitter_hooks, disk_dev, rwbs
from ..tool import Option, Tool, flag, positive_int

NO_QUEUE_TIME = (1 << 64) - 1  # bpf/include/biosnoop.h


def decode(e, disk):
    qdelta = int(e["qdelta"])
    return {"ts_ns": int(e["ts"]), "comm": e["comm"].decode(errors="replace") or "?",
            "pid": int(e["pid"]), "disk": disk(int(e["dev"])), "rwbs": rwbs(int(e["cmd_flags"])),
            "sector": int(e["sector"]), "bytes": int(e["len"]),
            "que_ms": None if qdelta == NO_QUEUE_TIME else qdelta / 1e6,
            "lat_ms": int(e["delta"]) / 1e6}


class Biosnoop(Tool):
    name = "biosnoop"
    summary = "trace block I/O with pid, disk, sector, size and latency"
    description = (
        "Trace block device I/O: one line per request with the submitting process, disk,\n"
        "op (T: R read, W write, D discard, F flush; then F fua, A readahead, S sync,\n"
        "M metadata), first sector, size and latency from issue to the driver until\n"
        "completion (libbpf-tools' biosnoop). -Q adds the OS queue time before issue.\n\n"
        "The process is the one in whose context the request entered the block layer\n"
        "(tracepoint block_io_start; block_getrq before Linux 6.5). Writeback from the\n"
        "page cache is therefore shown as the flusher kworker, not the process that\n"
        "dirtied the pages; PID 0 and COMM ? mean the request began before tracing did.")

    streams = target = True
    options = (
        flag("-Q", "--queued", help="include OS queued time"),
        Option("-d", "--disk", metavar="DISK", help="trace this disk only"),
        flag("-t", "--timestamp", help="include a wall-clock timestamp (HH:MM:SS)"),
        Option("-m", "--min", type=positive_int("min latency"), metavar="MIN_MS",
               help="only show I/O slower than this many milliseconds"),
        Option("duration", nargs="?", type=positive_int("duration"),
               help="total duration of trace in seconds"))

    def banner_for(self, opts):
        return self.header(opts)

    def configure(self, spec, opts):
        spec.set_globals(min_lat_ns=(opts.min or 0) * 1000000, wakeup_bytes=64 * 1024)
        if opts.disk:
            spec.set_global("targ_dev", disk_dev(opts.disk))
        choose_submitter_hooks(spec)
        self._disks, self._first_ns = DiskNames(), None

    def decode(self, batch, dtype, opts):
        """Each request, with time_s from the first one shown."""
        for rec in batch:
            e = decode(rec, self._disks)
            if self._first_ns is None:
                self._first_ns = e["ts_ns"]
            e["time_s"] = (e["ts_ns"] - self._first_ns) / 1e9
            yield e

    def render(self, records, opts, out):
        for e in records:
            out.text(self.row(opts, e))

    @staticmethod
    def header(args):
        line = "%-8s " % "TIME" if args.timestamp else ""
        line += "%-11s %-14s %-7s %-7s %-4s %-10s %-7s " % (
            "TIME(s)", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES")
        line += "%7s " % "QUE(ms)" if args.queued else ""
        return line + "%7s" % "LAT(ms)"

    @staticmethod
    def row(args, e):
        line = "%-8s " % time.strftime("%H:%M:%S") if args.timestamp else ""
        line += "%-11.6f %-14.14s %-7d %-7s %-4s %-10d %-7d " % (
            e["time_s"], e["comm"], e["pid"], e["disk"], e["rwbs"], e["sector"], e["bytes"])
        if args.queued:
            line += "%7.3f " % (-1 if e["que_ms"] is None else e["que_ms"])
        return line + "%7.3f" % e["lat_ms"]
