"""tcpdrop: trace TCP packets dropped by the kernel, with the drop reason (BCC's tcpdrop)."""
import struct
import time

from .. import net
from ..bpf.btfenum import short_names
from ..tool import FOREVER, LONG_DURATION, StopSignal, Tool, flag, output_for

HEADER = "%-8s %-7s %-2s %-20s > %-20s %s (%s) %s"


def reason_counts(obj):
    """[(enum skb_drop_reason value, drops)] counted in the kernel when the object was loaded
    with targ_count_reasons (per-CPU counters summed); names: short_names("skb_drop_reason",
    "SKB_DROP_REASON_")."""
    keys, values = obj.map("reason_counts").read_all()
    return [(int(k), int(v.sum())) for k, v in zip(keys, values)]


class Symbols:
    """Kernel addresses to function names (profile's kallsyms table, read on first use)."""

    def __init__(self):
        self._table = None

    def names(self, addrs):
        if self._table is None:
            from ..profile.symbols import kernel_symbols
            self._table = kernel_symbols()
        names = self._table.lookup(addrs) if addrs else []
        # the innermost frames are our own program and the tracepoint's trampoline
        while names and names[0].startswith(("bpf_prog_", "bpf_trace_run")):
            names.pop(0)
        return names


def stack_of(stacks, stack_id):
    """Kernel return addresses of a stack id from the stack-trace map (innermost first)."""
    if stack_id < 0:
        return []
    raw = stacks.lookup_bytes(struct.pack("<I", stack_id))
    if raw is None:
        return []
    return [a for a in struct.unpack(f"<{len(raw) // 8}Q", raw) if a]


class Tcpdrop(Tool):
    name = "tcpdrop"
    summary = "trace kernel packet drops with the drop reason"
    description = (
        "Trace TCP packets dropped by the kernel (BCC's tcpdrop), with the kernel's drop\n"
        "reason (enum skb_drop_reason, names read from this kernel's BTF).\n\n"
        "Hooks skb:kfree_skb instead of a kprobe on tcp_drop: every dropped IPv4/IPv6 TCP\n"
        "packet is shown, including those that never reached a socket (NO_SOCKET, checksum\n"
        "and filter drops); STATE is '-' for those. Drops without a reason (NOT_SPECIFIED,\n"
        "plain kfree_skb) are skipped, as in BCC. Addresses are the packet's: SADDR:SPORT is\n"
        "its source. BCC always prints the kernel stack; here -s/--stack asks for it.")

    options = (
        *net.FAMILY_OPTIONS,
        flag("-s", "--stack", help="print the kernel stack of each drop"),
        flag("-c", "--count", help="count drops per reason in the kernel, print them at the end"),
        LONG_DURATION)

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts)
        spec.set_globals(targ_stack=opts.stack and not opts.count, targ_count_reasons=opts.count)
        if opts.count:
            spec.maps["events"].max_entries = 4096  # unused: counts stay in the kernel
        if not opts.stack or opts.count:
            spec.maps["stacks"].max_entries = 1

    def run(self, args):
        out = output_for(args)
        spec = self.open(args)
        if args.count:
            return self._count(spec, args, out)
        reasons = short_names("skb_drop_reason", "SKB_DROP_REASON_")
        syms = Symbols()
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            stacks = obj.map("stacks")
            out.banner(HEADER % ("TIME", "PID", "IP", "SADDR:SPORT", "DADDR:DPORT", "STATE",
                                 "FLAGS", "REASON"))

            def show(rec):
                e = self.decode(rec, reasons)
                frames = syms.names(stack_of(stacks, int(rec["stack_id"]))) if args.stack else []
                out.record({"tool": self.name, **e, **({"stack": frames} if args.stack else {})})
                out.text(HEADER % (time.strftime("%H:%M:%S"), e["pid"], e["ip"],
                                   "%s:%d" % (e["saddr"], e["sport"]),
                                   "%s:%d" % (e["daddr"], e["dport"]), e["state"], e["flags"],
                                   e["reason"]))
                for f in frames:
                    out.text("\t" + f)
                if args.stack:
                    out.text()

            net.stream_records(stop, obj, show, duration=args.duration)
        return 0

    def _count(self, spec, args, out):
        reasons = short_names("skb_drop_reason", "SKB_DROP_REASON_")
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            out.banner("Counting TCP drops by reason... Hit Ctrl-C to end.")
            stop.sleep(args.duration or FOREVER)
            rows = sorted(reason_counts(obj), key=lambda r: -r[1])
        out.text("%-32s %10s" % ("REASON", "DROPS"))
        for nr, n in rows:
            name = reasons.get(nr, str(nr))
            out.record({"tool": self.name, "reason": name, "drops": n})
            out.text("%-32s %10d" % (name, n))
        return 0

    @staticmethod
    def decode(rec, reasons):
        f = net.flow_dict(rec["flow"])  # the packet's source is flow's "local" end
        reason = int(rec["reason"])
        return {"pid": int(rec["pid"]), "ip": f["ip"], "saddr": f["laddr"], "sport": f["lport"],
                "daddr": f["raddr"], "dport": f["rport"],
                "state": net.tcp_state(rec["state"]) if rec["state"] else "-",
                "flags": net.tcp_flags(int(rec["tcpflags"])),
                "reason": reasons.get(reason, str(reason)), "ts_ns": int(rec["ts_ns"])}
