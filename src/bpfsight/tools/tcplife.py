"""tcplife: one line per TCP session when it closes, with bytes and duration (BCC's tcplife)."""
import time

from .. import net
from ..tool import (StopSignal, Tool, add_output_args, add_target_args, open_spec, output_for,
                    positive_int, select_hooks)


def record_dtype():
    import numpy as np
    return np.dtype([("flow", net.flow_dtype()), ("ts_ns", "<u8"), ("span_ns", "<u8"),
                     ("rx_b", "<u8"), ("tx_b", "<u8"), ("pid", "<u4"), ("comm", "S16"),
                     ("_pad", "<u4")])


def decode(rec):
    return {"pid": int(rec["pid"]), "comm": net.text(rec["comm"]), **net.flow_dict(rec["flow"]),
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

    def add_arguments(self, p):
        p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
        p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output (seconds)")
        p.add_argument("-w", "--wide", action="store_true", help="wide column output (fits IPv6 addresses)")
        p.add_argument("-s", "--csv", action="store_true", help="comma separated values output")
        add_target_args(p)
        p.add_argument("-L", "--localport", type=net.port_list,
                       help="comma-separated list of local ports to trace")
        p.add_argument("-D", "--remoteport", type=net.port_list,
                       help="comma-separated list of remote ports to trace")
        net.add_family_args(p)
        p.add_argument("--duration", type=positive_int("duration"), help="stop after this many seconds")
        add_output_args(p)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("tcplife", args, self.name)
        net.set_net_filters(spec, args, lports=args.localport, rports=args.remoteport)
        select_hooks(spec, self.name)
        layout = Layout(args)

        def show(rec):
            e = decode(rec)
            out.record({"tool": self.name, **e})
            out.text(layout.line(e))

        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            out.banner(layout.header())
            net.stream_records(stop, obj, record_dtype(), show, duration=args.duration)
        return 0
