"""tcpaccept: trace passive TCP connections as they are accepted (BCC's tcpaccept)."""
import time

from .. import net
from ..report.grouped import comm_of
from ..tool import LONG_DURATION, TIME_COLUMN, Option, Tool, flag


def decode(rec):
    return {"pid": int(rec["pid"]), "comm": comm_of(rec["comm"]), **net.flow_dict(rec["flow"]),
            "ts_ns": int(rec["ts_ns"])}


class Tcpaccept(Tool):
    name = "tcpaccept"
    summary = "trace passive TCP accepts"
    description = (
        "Trace TCP accepts (BCC's tcpaccept).\n\n"
        "Hooks the exit of accept() and accept4(), which run in the accepting process, and\n"
        "reads the new socket through its file descriptor. Connections accepted through\n"
        "io_uring do not pass through these syscalls and are not shown.")

    streams = target = True
    options = (
        TIME_COLUMN,
        flag("-t", "--timestamp", help="include timestamp on output"),
        Option("-P", "--port", type=net.port_list,
               help="comma-separated list of local ports to trace"),
        *net.FAMILY_OPTIONS,
        LONG_DURATION)

    def banner_for(self, opts):
        header = ("%-9s" % "TIME" if opts.time else "") + \
            ("%-9s" % "TIME(s)" if opts.timestamp else "")
        return header + "%-7s %-12s %-2s %-16s %-5s %-16s %-5s" % (
            "PID", "COMM", "IP", "RADDR", "RPORT", "LADDR", "LPORT")

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts, lports=opts.port)
        self._since = net.RelativeTime()

    def decode(self, batch, dtype, opts):
        return map(decode, batch)

    def render(self, records, opts, out):
        for e in records:
            row = "%-9s" % time.strftime("%H:%M:%S") if opts.time else ""
            row += "%-9.3f" % self._since(e["ts_ns"]) if opts.timestamp else ""
            out.text(row + "%-7d %-12.12s %-2d %-16s %-5d %-16s %-5d" % (
                e["pid"], e["comm"], e["ip"], e["raddr"], e["rport"], e["laddr"], e["lport"]))
