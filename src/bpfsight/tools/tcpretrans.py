"""tcpretrans: trace or count TCP retransmits (BCC's tcpretrans)."""
import time

from .. import net
from ..errors import UsageError
from ..tool import LONG_DURATION, Tool, flag, output_for


def decode(rec):
    return {"pid": int(rec["pid"]), **net.flow_dict(rec["flow"]),
            "state": net.tcp_state(rec["state"]), "synack": bool(rec["synack"]),
            "ts_ns": int(rec["ts_ns"])}


def choose_retransmit_hook(spec):
    """Where tcp_retransmit_skb carries err (6.10+), use the twin that skips failed attempts,
    so the count is RetransSegs' count (tool and exporter alike)."""
    from ..bpf.features import btf_tracepoint_nargs
    has_err = (btf_tracepoint_nargs("tcp_retransmit_skb") or 0) >= 3
    spec.programs["tcpretrans_skb" if has_err else "tcpretrans_skb_err"].autoload = False


class Tcpretrans(Tool):
    name = "tcpretrans"
    summary = "trace TCP retransmits with addresses and state"
    description = (
        "Trace TCP retransmits (BCC's tcpretrans), including SYN-ACK retransmits.\n\n"
        "Each retransmitted packet is one line (or one count with -c); the kernel's RetransSegs\n"
        "counter counts segments, so a retransmitted TSO/GSO packet counts once here and\n"
        "several times there. PID is whatever task was running when the retransmit happened\n"
        "(often a timer or softirq), as in BCC. BCC's -l (tail loss probes) needs a kprobe on\n"
        "tcp_send_loss_probe; there is no tracepoint for it, so -l is refused. A loss probe\n"
        "that resends data still shows here as an ordinary retransmit.")

    banner = "Tracing retransmits ... Hit Ctrl-C to end"
    options = (
        flag("-l", "--lossprobe",
             help="include tail loss probe attempts (not available: no tracepoint)"),
        flag("-c", "--count", help="count occurred retransmits per flow"),
        *net.FAMILY_OPTIONS,
        LONG_DURATION)

    def configure(self, spec, opts):
        if opts.lossprobe:
            raise UsageError("-l needs a hook on tcp_send_loss_probe: no tracepoint exists for it "
                             "and kprobes are unavailable (resent loss probes are traced anyway)")
        net.set_net_filters(spec, opts)
        net.count_mode(spec, opts)
        choose_retransmit_hook(spec)

    def run(self, args):
        return net.count_or_trace(self, self.open(args), args, output_for(args), self.banner)

    def trace(self, stop, obj, out, args):
        out.text("%-8s %-6s %-2s %-20s %1s> %-20s %-4s" % ("TIME", "PID", "IP", "LADDR:LPORT", "T",
                                                          "RADDR:RPORT", "STATE"))

        def show(rec):
            e = decode(rec)
            out.record({"tool": self.name, **e})
            out.text("%-8s %-6d %-2d %-20s R> %-20s %s" % (
                time.strftime("%H:%M:%S"), e["pid"], e["ip"],
                "%s:%d" % (e["laddr"], e["lport"]), "%s:%d" % (e["raddr"], e["rport"]),
                e["state"]))

        net.stream_records(stop, obj, show, duration=args.duration)

    def print_counts(self, obj, out):
        rows = sorted(net.read_flow_counts(obj), key=lambda kv: kv[1])
        out.text("\n%-25s %-25s %-10s" % ("LADDR:LPORT", "RADDR:RPORT", "RETRANSMITS"))
        for f, n in rows:
            out.record({"tool": self.name, **f, "retransmits": n})
            out.text("%-20s <-> %-20s %10d" % ("[%s]#%d" % (f["laddr"], f["lport"]),
                                               "[%s]#%d" % (f["raddr"], f["rport"]), n))
