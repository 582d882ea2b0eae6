"""tcpaccept: trace passive TCP connections as they are accepted (BCC's tcpaccept)."""
import time

from .. import net
from ..tool import (StopSignal, Tool, add_output_args, add_target_args, open_spec, output_for,
                    positive_int, select_hooks)


def record_dtype():
    import numpy as np
    return np.dtype([("flow", net.flow_dtype()), ("ts_ns", "<u8"), ("pid", "<u4"),
                     ("comm", "S16"), ("_pad", "<u4")])


def decode(rec):
    return {"pid": int(rec["pid"]), "comm": net.text(rec["comm"]), **net.flow_dict(rec["flow"]),
            "ts_ns": int(rec["ts_ns"])}


class Tcpaccept(Tool):
    name = "tcpaccept"
    summary = "trace passive TCP accepts"
    description = (
        "Trace TCP accepts (BCC's tcpaccept).\n\n"
        "Hooks the exit of accept() and accept4(), which run in the accepting process, and\n"
        "reads the new socket through its file descriptor. Connections accepted through\n"
        "io_uring do not pass through these syscalls and are not shown.")

    def add_arguments(self, p):
        p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
        p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
        add_target_args(p)
        p.add_argument("-P", "--port", type=net.port_list,
                       help="comma-separated list of local ports to trace")
        net.add_family_args(p)
        p.add_argument("--duration", type=positive_int("duration"), help="stop after this many seconds")
        add_output_args(p)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("tcpaccept", args, self.name)
        net.set_net_filters(spec, args, lports=args.port)
        select_hooks(spec, self.name)
        header = ("%-9s" % "TIME" if args.time else "") + ("%-9s" % "TIME(s)" if args.timestamp else "")
        header += "%-7s %-12s %-2s %-16s %-5s %-16s %-5s" % ("PID", "COMM", "IP", "RADDR", "RPORT",
                                                             "LADDR", "LPORT")
        since = net.RelativeTime()

        def show(rec):
            e = decode(rec)
            out.record({"tool": self.name, **e})
            row = "%-9s" % time.strftime("%H:%M:%S") if args.time else ""
            row += "%-9.3f" % since(e["ts_ns"]) if args.timestamp else ""
            out.text(row + "%-7d %-12.12s %-2d %-16s %-5d %-16s %-5d" % (
                e["pid"], e["comm"], e["ip"], e["raddr"], e["rport"], e["laddr"], e["lport"]))

        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            out.banner(header)
            net.stream_records(stop, obj, record_dtype(), show, duration=args.duration)
        return 0
