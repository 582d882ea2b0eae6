"""gethostlatency: host name lookups through libc with their latency (BCC's gethostlatency)."""
import time

from ..binaries import resolve_binary
from ..report.grouped import comm_of
from ..tool import DURATION, Tool

FUNCTIONS = ("getaddrinfo", "gethostbyname", "gethostbyname2")


class Gethostlatency(Tool):
    name = "gethostlatency"
    summary = "trace host name lookups (getaddrinfo, gethostbyname) with latency"
    description = ("Show the latency of host name lookups made through the C library: "
                   "getaddrinfo(), gethostbyname() and gethostbyname2() (BCC's "
                   "gethostlatency), timed from call to return with a uprobe and a uretprobe "
                   "on the libc the target maps (or the system's). Lookups made without libc "
                   "(Go's pure resolver, a program's own DNS client) are not seen.")
    streams = target = True
    options = (DURATION,)

    def banner_for(self, opts):
        return "%-9s %-7s %-16s %10s %s" % ("TIME", "PID", "COMM", "LATms", "HOST")

    def configure(self, spec, opts):
        self._libc = resolve_binary("c", opts.pid)
        spec.set_global("wakeup_bytes", 1)  # show each lookup as it returns

    def attach(self, obj, opts):
        pid = opts.pid or -1
        for fn in FUNCTIONS:
            obj.attach_uprobe("gethost_entry", self._libc, fn, pid=pid)
            obj.attach_uprobe("gethost_return", self._libc, fn, pid=pid, retprobe=True)

    def decode(self, batch, dtype, opts):
        for r in batch:
            yield {"ts_ns": int(r["ts_ns"]), "pid": int(r["pid"]), "tid": int(r["tid"]),
                   "comm": comm_of(r["comm"]), "lat_ms": int(r["lat_ns"]) / 1e6,
                   "host": comm_of(r["host"])}

    def render(self, records, opts, out):
        for e in records:
            out.text("%-9s %-7d %-16s %10.2f %s" % (time.strftime("%H:%M:%S"), e["pid"],
                                                    e["comm"], e["lat_ms"], e["host"]))
