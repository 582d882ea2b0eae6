"""tcptop: top TCP connections by throughput per interval (BCC's tcptop)."""
import sys
import time

from .. import net
from ..report.grouped import comm_of
from ..bpf import features
from ..tool import Tool, flag



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


def connection_rows(keys, values):
    """Per-CPU values summed into rows {pid, comm, ip, laddr, raddr, rx_b, tx_b}, busiest
    first."""
    rows = []
    for k, per_cpu in zip(keys, values):
        comm = next((comm_of(c) for c in per_cpu["comm"] if c), str(int(k["pid"])))
        f = net.flow_dict(k["flow"])
        rows.append({"pid": int(k["pid"]), "comm": comm, "ip": f["ip"],
                     "laddr": f"{f['laddr']}:{f['lport']}", "raddr": f"{f['raddr']}:{f['rport']}",
                     "rx_b": int(per_cpu["received"].sum()), "tx_b": int(per_cpu["sent"].sum())})
    return sorted(rows, key=lambda r: r["rx_b"] + r["tx_b"], reverse=True)


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

    target = intervals = True
    default_interval = 1
    spaced = False  # a screen per interval
    options = (
        flag("-C", "--noclear", help="don't clear the screen"),
        flag("-S", "--nosummary", help="skip system summary line"),
        *net.FAMILY_OPTIONS,
        flag("--syscalls", help="count at send/recv syscall exits instead of the sock tracepoints"))

    def banner_for(self, opts):
        return "Tracing... Output every %s secs. Hit Ctrl-C to end" % opts.interval

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts)
        choose_hooks(spec, opts.syscalls)

    def collect(self, obj, opts):
        """Connections since the last call, busiest first: pid, comm, ip, laddr, raddr, rx_b,
        tx_b."""
        return connection_rows(*obj.map("traffic").read_all(delete=True))

    def render(self, rows, opts, out):
        if opts.noclear or opts.json or not sys.stdout.isatty():
            out.text()
        else:
            out.text("\033[H\033[2J", end="")
        if not opts.nosummary:
            with open("/proc/loadavg") as f:
                out.text("%-8s loadavg: %s" % (time.strftime("%H:%M:%S"), f.read()))
        for ip, width, title in ((4, 21, ("LADDR", "RADDR")), (6, 32, ("LADDR6", "RADDR6"))):
            mine = [r for r in rows if r["ip"] == ip]
            if not mine:
                continue
            out.text(("\n" if ip == 6 else "") + "%-6s %-12s %-*s %-*s %6s %6s" % (
                "PID", "COMM", width, title[0], width, title[1], "RX_KB", "TX_KB"))
            for r in mine:
                out.text("%-6d %-12.12s %-*s %-*s %6d %6d" % (
                    r["pid"], r["comm"], width, r["laddr"], width, r["raddr"],
                    r["rx_b"] // 1024, r["tx_b"] // 1024))
