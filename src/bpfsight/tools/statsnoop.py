"""statsnoop: stat-family calls with path and result (BCC's statsnoop)."""
from ..fileio import drop_absent_syscalls
from ..report.grouped import comm_of
from ..tool import DURATION, Tool, flag


class Statsnoop(Tool):
    name = "statsnoop"
    summary = "trace stat(), lstat(), fstatat(), statx() and statfs() with path and result"
    description = ("Trace the stat family of syscalls (stat, lstat, newfstatat, statx, statfs: "
                   "BCC's statsnoop), with the path as the caller passed it and the result "
                   "(ERR is the errno of a failed call). fstat() on an open fd has no path and "
                   "is not shown.")
    streams = target = True
    options = (flag("-t", "--timestamp", help="include timestamp on output"),
               flag("-x", "--failed", help="only show failed stats"),
               DURATION)

    def banner_for(self, opts):
        return ("%-14s" % "TIME(s)" if opts.timestamp else "") + \
            "%-7s %-16s %4s %3s %s" % ("PID", "COMM", "RET", "ERR", "PATH")

    def configure(self, spec, opts):
        spec.set_globals(targ_failed=opts.failed, wakeup_bytes=64 * 1024)
        drop_absent_syscalls(spec)
        self._first_ns = None

    def decode(self, batch, dtype, opts):
        for r in batch:
            ts, ret = int(r["ts_ns"]), int(r["ret"])
            self._first_ns = ts if self._first_ns is None else self._first_ns
            yield {"ts_ns": ts, "time_s": (ts - self._first_ns) / 1e9, "pid": int(r["pid"]),
                   "comm": comm_of(r["comm"]), "ret": ret, "err": -ret if ret < 0 else 0,
                   "path": comm_of(r["path"])}

    def render(self, records, opts, out):
        for e in records:
            out.text(("%-14.9f" % e["time_s"] if opts.timestamp else "") +
                     "%-7d %-16s %4d %3d %s" % (e["pid"], e["comm"], e["ret"], e["err"],
                                                e["path"]))
