"""syncsnoop: calls that flush data to disk (libbpf-tools' syncsnoop)."""
from ..fileio import drop_absent_syscalls
from ..report.grouped import comm_of
from ..tool import DURATION, Tool

CALLS = ("sync", "fsync", "fdatasync", "msync", "sync_file_range", "syncfs")  # syncsnoop.bpf.c


class Syncsnoop(Tool):
    name = "syncsnoop"
    summary = "trace sync, fsync, fdatasync, msync, sync_file_range and syncfs calls"
    description = ("Trace the calls that flush data to storage: sync(2), fsync(2), "
                   "fdatasync(2), msync(2), sync_file_range(2) and syncfs(2), one line each at "
                   "entry (libbpf-tools' syncsnoop; BCC's traces sync() alone). TIME(s) counts "
                   "from the first call shown.")
    streams = target = True
    options = (DURATION,)

    def banner_for(self, opts):
        return "%-18s %-7s %-16s %s" % ("TIME(s)", "PID", "COMM", "CALL")

    def configure(self, spec, opts):
        spec.set_global("wakeup_bytes", 1)
        drop_absent_syscalls(spec)
        self._first_ns = None

    def decode(self, batch, dtype, opts):
        for r in batch:
            ts = int(r["ts_ns"])
            self._first_ns = ts if self._first_ns is None else self._first_ns
            call = int(r["call"])
            yield {"ts_ns": ts, "time_s": (ts - self._first_ns) / 1e9, "pid": int(r["pid"]),
                   "comm": comm_of(r["comm"]),
                   "call": CALLS[call] if call < len(CALLS) else str(call)}

    def render(self, records, opts, out):
        for e in records:
            out.text("%-18.9f %-7d %-16s %s" % (e["time_s"], e["pid"], e["comm"], e["call"]))
