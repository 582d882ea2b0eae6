"""tcpstates: one line per TCP state change, with the time spent in the state left (BCC's
tcpstates)."""
import time

from .. import net
from ..report.grouped import comm_of
from ..tool import Tool


def decode(rec):
    return {"skaddr": "%x" % int(rec["skaddr"]), "pid": int(rec["pid"]),
            "comm": comm_of(rec["comm"]), **net.flow_dict(rec["flow"]),
            "oldstate": net.tcp_state(rec["oldstate"]), "newstate": net.tcp_state(rec["newstate"]),
            "ms": rec["delta_ns"] / 1e6, "ts_ns": int(rec["ts_ns"])}


class Tcpstates(Tool):
    name = "tcpstates"
    summary = "trace TCP state changes with the time spent in each state"
    description = (
        "Trace TCP session state changes and durations (BCC's tcpstates), from\n"
        "sock:inet_sock_set_state. MS is the time the socket spent in OLDSTATE, from its\n"
        "previous change (0 for a socket first seen in that state). C-PID and C-COMM are the\n"
        "task current at the change: the owner for changes made by a system call, whatever\n"
        "ran for those made in softirq context (an arriving SYN-ACK or FIN).")

    streams = True
    options = net.SESSION_OPTIONS

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts, lports=opts.localport, rports=opts.remoteport)
        # a busy server changes states thousands of times a second: wake the reader per
        # 16 KiB (or at its 0.1 s poll), not per record (that cost ~9 us per change)
        spec.set_global("wakeup_bytes", 16 * 1024)

    @staticmethod
    def _columns(opts):
        """(header, text format, field) per column, in BCC's order."""
        width = 39 if opts.wide else 15
        cols = [("SKADDR", "%-16s", "skaddr"), ("C-PID", "%-5s", "pid"),
                ("C-COMM", "%-10.10s", "comm")]
        if opts.wide or opts.csv:
            cols.append(("IP", "%-2s", "ip"))
        return cols + [("LADDR", f"%-{width}s", "laddr"), ("LPORT", "%-5s", "lport"),
                       ("RADDR", f"%-{width}s", "raddr"), ("RPORT", "%-5s", "rport"),
                       ("OLDSTATE", "%-11s", "oldstate"), ("NEWSTATE", "-> %-11s", "newstate"),
                       ("MS", "%s", "ms")]

    @staticmethod
    def _line(opts, cols, values, time_col, ts_col):
        lead = []
        if opts.time:
            lead.append(time_col if opts.csv else "%-8s" % time_col)
        if opts.timestamp:
            lead.append(ts_col if opts.csv else "%-9s" % ts_col)
        if opts.csv:
            return ",".join(map(str, lead + values))
        return " ".join(lead + [fmt % v for (_, fmt, _), v in zip(cols, values)])

    def banner_for(self, opts):
        cols = self._columns(opts)
        return self._line(opts, cols, [head for head, _, _ in cols], "TIME", "TIME(s)")

    def decode(self, batch, dtype, opts):
        return map(decode, batch)

    def render(self, records, opts, out):
        since = self.__dict__.setdefault("_since", net.RelativeTime())  # -t: from the first
        cols = self._columns(opts)
        for e in records:
            values = [("%.3f" % e["ms"]) if field == "ms" else e[field] for _, _, field in cols]
            out.text(self._line(opts, cols, values, time.strftime("%H:%M:%S"),
                                "%.6f" % since(e["ts_ns"])))
