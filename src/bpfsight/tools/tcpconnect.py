"""tcpconnect: trace (or count) active TCP connects, optionally with their latency
(BCC's tcpconnect, with tcpconnlat's LAT(ms) column under --latency)."""

from .. import net
from ..report.grouped import comm_of
from ..target import pid_arg, uid_arg
from ..tool import LONG_DURATION, Option, Tool, flag, output_for


def decode(rec):
    return {"pid": int(rec["pid"]), "uid": int(rec["uid"]), "comm": comm_of(rec["comm"]),
            **net.flow_dict(rec["flow"]), "established": bool(rec["established"]),
            "lat_ms": rec["lat_ns"] / 1e6, "ts_ns": int(rec["ts_ns"])}


class Trace:
    """BCC's per-connect lines: [TIME(s)] [UID] PID COMM IP SADDR [LPORT] DADDR DPORT [LAT(ms)]."""

    def __init__(self, args):
        self.args = args
        self.since = net.RelativeTime()

    def header(self):
        a = self.args
        h = ("%-9s" % "TIME(s)" if a.timestamp else "") + ("%-6s" % "UID" if a.print_uid else "")
        if a.lport:
            h += "%-6s %-12s %-2s %-16s %-6s %-16s %-6s" % ("PID", "COMM", "IP", "SADDR", "LPORT",
                                                           "DADDR", "DPORT")
        else:
            h += "%-6s %-12s %-2s %-16s %-16s %-6s" % ("PID", "COMM", "IP", "SADDR", "DADDR", "DPORT")
        return h + (" LAT(ms)" if a.latency else "")

    def line(self, e):
        a = self.args
        s = "%-9.3f" % self.since(e["ts_ns"]) if a.timestamp else ""
        s += "%-6d" % e["uid"] if a.print_uid else ""
        if a.lport:
            s += "%-6d %-12.12s %-2d %-16s %-6d %-16s %-6d" % (
                e["pid"], e["comm"], e["ip"], e["laddr"], e["lport"], e["raddr"], e["rport"])
        else:
            s += "%-6d %-12.12s %-2d %-16s %-16s %-6d" % (
                e["pid"], e["comm"], e["ip"], e["laddr"], e["raddr"], e["rport"])
        return s + (" %.2f" % e["lat_ms"] if a.latency else "")


class Tcpconnect(Tool):
    name = "tcpconnect"
    summary = "trace active TCP connects with latency"
    description = (
        "Trace TCP connects (BCC's tcpconnect).\n\n"
        "Hooks sock:inet_sock_set_state: CLOSE->SYN_SENT runs in the connecting process. The\n"
        "local port is only chosen after that transition, so a connect is printed when it\n"
        "completes (ESTABLISHED) or fails (CLOSE); one still waiting for a SYN-ACK is not shown\n"
        "yet. --latency adds LAT(ms), SYN_SENT to ESTABLISHED, and shows successful connects\n"
        "only (as tcpconnlat). BCC's -d (DNS) needs kprobes and is not offered.")

    banner = "Tracing connect ... Hit Ctrl-C to end"
    options = (
        flag("-t", "--timestamp", help="include timestamp on output"),
        Option("-p", "--pid", type=pid_arg, help="trace this PID only"),
        Option("--cgroup", metavar="PATH", help="trace this cgroup v2 (and its descendants) only"),
        Option("-P", "--port", type=net.port_list,
               help="comma-separated list of destination ports to trace"),
        *net.FAMILY_OPTIONS,
        flag("-L", "--lport", help="include LPORT on output"),
        flag("-U", "--print-uid", help="include UID on output"),
        Option("-u", "--uid", type=uid_arg, help="trace this UID only"),
        flag("-c", "--count", help="count connects per src ip and dest ip/port"),
        flag("-l", "--latency",
             help="include connect latency, LAT(ms), and show successful connects only"),
        LONG_DURATION)

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts, rports=opts.port)
        net.count_mode(spec, opts)
        if opts.uid is not None:
            spec.set_global("targ_uid", opts.uid)

    def run(self, args):
        return net.count_or_trace(self, self.open(args), args, output_for(args), self.banner)

    def trace(self, stop, obj, out, args):
        fmt = Trace(args)
        out.text(fmt.header())

        def show(rec):
            e = decode(rec)
            if args.latency and not e["established"]:
                return
            out.record({"tool": self.name, **e})
            out.text(fmt.line(e))

        net.stream_records(stop, obj, show, duration=args.duration)

    def print_counts(self, obj, out):
        rows = sorted(net.read_flow_counts(obj), key=lambda kv: kv[1], reverse=True)
        out.text("\n%-25s %-25s %-20s %-10s" % ("LADDR", "RADDR", "RPORT", "CONNECTS"))
        for f, n in rows:
            out.record({"tool": self.name, "ip": f["ip"], "laddr": f["laddr"],
                        "raddr": f["raddr"], "rport": f["rport"], "connects": n})
            out.text("%-25s %-25s %-20s %-10d" % (f["laddr"], f["raddr"], f["rport"], n))


class Tcpconnlat(Tcpconnect):
    """BCC's tcpconnlat: tcpconnect --latency, successful connects with LAT(ms)."""
    name = "tcpconnlat"
    object_name = "tcpconnect"
    summary = "trace TCP connect latency (SYN_SENT to ESTABLISHED)"
    description = ("Trace TCP active connects with their latency, SYN sent to ESTABLISHED "
                   "(BCC's tcpconnlat): tcpconnect --latency, successful connects only.")
    options = tuple(o for o in Tcpconnect.options if o.dest not in ("latency", "count"))

    def configure(self, spec, opts):
        opts.latency, opts.count = True, False
        super().configure(spec, opts)
