"""tcptop: top TCP connections by throughput per interval (BCC's tcptop)."""
import sys
import time
from collections import namedtuple

from .. import net
from ..bpf import features
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, select_hooks)

Row = namedtuple("Row", "pid comm ip laddr raddr rx_b tx_b")


def key_dtype():
    import numpy as np
    return np.dtype([("flow", net.flow_dtype()), ("pid", "<u4"), ("_pad", "<u4")])


def value_dtype():
    import numpy as np
    return np.dtype([("sent", "<u8"), ("received", "<u8"), ("comm", "S16")])


def has_sock_tracepoints():
    return all(features.btf_tracepoint_exists(n) or features.tracepoint_exists("sock", n)
               for n in ("sock_send_length", "sock_recv_length"))


def choose_hooks(spec, syscalls):
    """The sock tracepoints when the kernel has them (and --syscalls is not given), else the
    syscall pairs; select_hooks then picks tp_btf or raw_tp for the sock ones."""
    use_syscalls = syscalls or not has_sock_tracepoints()
    for name, prog in spec.programs.items():
        on_syscall = prog.section.startswith("tracepoint/syscalls/")
        prog.autoload = on_syscall == use_syscalls
    if not use_syscalls:
        spec.maps["calls"].max_entries = 1
    return use_syscalls


def collect(keys, values):
    """Per-CPU values summed into rows, busiest first."""
    rows = []
    for k, per_cpu in zip(keys, values):
        comm = next((net.text(c) for c in per_cpu["comm"] if c), str(int(k["pid"])))
        f = net.flow_dict(k["flow"])
        rows.append(Row(int(k["pid"]), comm, f["ip"], f"{f['laddr']}:{f['lport']}",
                        f"{f['raddr']}:{f['rport']}", int(per_cpu["received"].sum()),
                        int(per_cpu["sent"].sum())))
    return sorted(rows, key=lambda r: r.rx_b + r.tx_b, reverse=True)


class Tcptop(Tool):
    name = "tcptop"
    summary = "top TCP connections by throughput per interval"
    description = (
        "Summarize TCP send/recv throughput by host (BCC's tcptop).\n\n"
        "Bytes are what send/recv calls on TCP sockets returned, from sock:sock_send_length\n"
        "and sock:sock_recv_length (BCC traces tcp_sendmsg/tcp_cleanup_rbuf with kprobes).\n"
        "Without those tracepoints, or with --syscalls, they are counted at the exit of\n"
        "send/sendto/sendmsg/write/writev and recv/recvfrom/recvmsg/read/readv on socket\n"
        "fds; sendfile, splice and io_uring transfers are then missed.")

    def add_arguments(self, p):
        p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
        p.add_argument("-S", "--nosummary", action="store_true", help="skip system summary line")
        add_target_args(p)
        net.add_family_args(p)
        p.add_argument("--syscalls", action="store_true",
                       help="count at send/recv syscall exits instead of the sock tracepoints")
        add_output_args(p)
        add_interval_args(p, default_interval=1)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("tcptop", args, self.name)
        net.set_net_filters(spec, args)
        choose_hooks(spec, args.syscalls)
        select_hooks(spec, self.name)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            traffic = obj.map("traffic", key=key_dtype, value=value_dtype)
            out.banner("Tracing... Output every %s secs. Hit Ctrl-C to end" % args.interval)
            interval_loop(stop, args.interval, args.count,
                          lambda: self.show(out, args, collect(*traffic.read_all(delete=True))))
        return 0

    def show(self, out, args, rows):
        if args.noclear or args.json or not sys.stdout.isatty():
            out.text()
        else:
            out.text("\033[H\033[2J", end="")
        if not args.nosummary:
            with open("/proc/loadavg") as f:
                out.text("%-8s loadavg: %s" % (time.strftime("%H:%M:%S"), f.read()))
        for ip, width, title in ((4, 21, ("LADDR", "RADDR")), (6, 32, ("LADDR6", "RADDR6"))):
            mine = [r for r in rows if r.ip == ip]
            if not mine:
                continue
            out.text(("\n" if ip == 6 else "") + "%-6s %-12s %-*s %-*s %6s %6s" % (
                "PID", "COMM", width, title[0], width, title[1], "RX_KB", "TX_KB"))
            for r in mine:
                out.record({"tool": self.name, **r._asdict()})
                out.text("%-6d %-12.12s %-*s %-*s %6d %6d" % (
                    r.pid, r.comm, width, r.laddr, width, r.raddr, r.rx_b // 1024, r.tx_b // 1024))
