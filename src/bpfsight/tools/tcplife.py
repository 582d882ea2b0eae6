"""tcplife: one line per TCP session when it closes, with bytes and duration (BCC's tcplife)."""
import time

from .. import net
from ..report.grouped import comm_of
from ..tool import Tool


def decode(rec):
    return {"pid": int(rec["pid"]), "comm": comm_of(rec["comm"]), **net.flow_dict(rec["flow"]),
            "tx_b": int(rec["tx_b"]), "rx_b": int(rec["rx_b"]), "ms": rec["span_ns"] / 1e6,
            "ts_ns": int(rec["ts_ns"])}


class Layout:
    """BCC's three layouts: default (80 columns), -w wide (fits IPv6), -s CSV."""

    def __init__(self, args):
        self.args = args
        if args.csv:
            self.head = "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s"
            self.row = "%d,%s,%s,%s,%s,%s,%d,%d,%d,%.2f"
        elif args.wide:
            self.head = "%-5s %-16.16s %-2s %-26s %-5s %-26s %-5s %6s %6s %s"
            self.row = "%-5d %-16.16s %-2s %-26s %-5s %-26s %-5d %6d %6d %.2f"
        else:
            self.head = "%-5s %-10.10s %s%-15s %-5s %-15s %-5s %5s %5s %s"
            self.row = "%-5d %-10.10s %s%-15s %-5d %-15s %-5d %5d %5d %.2f"
        self.since = net.RelativeTime()

    def _prefix(self, time_col, ts_col):
        sep = "," if self.args.csv else " "
        out = ""
        if self.args.time:
            out += (time_col + sep) if self.args.csv else "%-8s " % time_col
        if self.args.timestamp:
            out += (ts_col + sep) if self.args.csv else "%-9s " % ts_col
        return out

    def header(self):
        ip = "IP" if self.args.wide or self.args.csv else ""
        return self._prefix("TIME", "TIME(s)") + self.head % (
            "PID", "COMM", ip, "LADDR", "LPORT", "RADDR", "RPORT", "TX_KB", "RX_KB", "MS")

    def line(self, e):
        delta = "%.6f" % self.since(e["ts_ns"])
        ip = str(e["ip"]) if self.args.wide or self.args.csv else ""
        return self._prefix(time.strftime("%H:%M:%S"), delta) + self.row % (
            e["pid"], e["comm"], ip, e["laddr"], e["lport"], e["raddr"], e["rport"],
            e["tx_b"] // 1024, e["rx_b"] // 1024, e["ms"])


class Tcplife(Tool):
    name = "tcplife"
    summary = "trace TCP sessions with addresses, ports, bytes and duration"
    description = (
        "Trace the lifespan of TCP sessions and summarize (BCC's tcplife).\n\n"
        "TX_KB is bytes acknowledged by the peer and RX_KB bytes received (tcp_sock's\n"
        "bytes_acked/bytes_received, read when the session closes). PID and COMM are those of\n"
        "the process that connected or closed the socket; a session closed from softirq\n"
        "context without either shows the task that happened to be running.")

    streams = target = True
    options = net.SESSION_OPTIONS

    def banner_for(self, opts):
        return self._layout.header()

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts, lports=opts.localport, rports=opts.remoteport)
        spec.set_global("wakeup_bytes", 16 * 1024)  # per 16 KiB or the 0.1 s poll, not per record
        self._layout = Layout(opts)

    def decode(self, batch, dtype, opts):
        return map(decode, batch)

    def render(self, records, opts, out):
        for e in records:
            out.text(self._layout.line(e))
