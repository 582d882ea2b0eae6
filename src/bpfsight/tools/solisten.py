"""solisten: sockets that start listening, with address, protocol and backlog (BCC's
solisten)."""
import time

from .. import net
from ..fileio import drop_absent_syscalls
from ..report.grouped import comm_of
from ..tool import DURATION, TIMESTAMP, Tool

PROTOCOLS = {6: "TCP", 17: "UDP", 132: "SCTP", 33: "DCCP"}


class Solisten(Tool):
    name = "solisten"
    summary = "trace sockets put into listening state"
    description = ("Trace listen(2) on IPv4/IPv6 sockets (BCC's solisten): the process, the "
                   "protocol, the backlog it asked for, and the address and port it listens "
                   "on, read through the socket's file descriptor when listen() returns "
                   "(BCC hooks inet_listen with a kprobe). RET is listen()'s result: a failed "
                   "call is shown too.")
    streams = target = True
    options = (TIMESTAMP, *net.FAMILY_OPTIONS,
               DURATION)

    def banner_for(self, opts):
        columns = ("PID", "COMM", "PROTO", "BACKLOG", "PORT", "RET", "ADDR")
        return ("%-8s " % "TIME" if opts.timestamp else "") + \
            "%-7s %-12s %-7s %-7s %-5s %-4s %s" % columns

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts)
        spec.set_global("wakeup_bytes", 1)  # rare: show each at once
        drop_absent_syscalls(spec)

    def decode(self, batch, dtype, opts):
        for r in batch:
            f = net.flow_dict(r["flow"])
            proto = PROTOCOLS.get(int(r["protocol"]), str(int(r["protocol"])))
            yield {"ts_ns": int(r["ts_ns"]), "pid": int(r["pid"]), "comm": comm_of(r["comm"]),
                   "proto": f"{proto}v{f['ip']}", "backlog": int(r["backlog"]),
                   "addr": f["laddr"], "port": f["lport"], "ret": int(r["ret"])}

    def render(self, records, opts, out):
        for e in records:
            clock = "%-8s " % time.strftime("%H:%M:%S") if opts.timestamp else ""
            out.text(clock + "%-7d %-12.12s %-7s %-7d %-5d %-4d %s" % (
                e["pid"], e["comm"], e["proto"], e["backlog"], e["port"], e["ret"], e["addr"]))
