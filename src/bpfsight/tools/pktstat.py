"""pktstat: packets and bytes on one interface by direction, protocol and port, counted in
the kernel by tc programs on tcx links (both directions) or an XDP program (ingress)."""
import sys

from .. import netns
from ..bpf.errors import NotSupportedError
from ..errors import UsageError
from ..tool import TIMESTAMP, Option, Tool, disable_programs, flag, positive_int

IP_PROTOCOLS = {0: "hopopt", 1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6",
                132: "sctp"}
ETHERTYPES = {0x0800: "ipv4", 0x86DD: "ipv6", 0x0806: "arp", 0x8100: "vlan"}
DIRECTIONS = {0: "in", 1: "out"}
ROW = "%-4s %-7s %6s %12s %14s"


def protocol(ethertype, proto):
    if ethertype in (0x0800, 0x86DD):
        return IP_PROTOCOLS.get(proto, f"ip/{proto}")
    return ETHERTYPES.get(ethertype, f"0x{ethertype:04x}")


def attach_counting(obj, ifindex, ns=None, xdp=False, netlink=False):
    """Count on one interface (in network namespace ns): tcx links on both directions, an XDP
    link, or clsact filters through netlink where the kernel has no tcx links (or asked)."""
    if not netlink:
        try:
            with netns.entered(ns):
                if xdp:
                    obj.attach_xdp("pktstat_xdp", ifindex)
                    return
                obj.attach_tcx("pktstat_ingress", ifindex)
                obj.attach_tcx("pktstat_egress", ifindex, egress=True)
                return
        except NotSupportedError:
            obj.detach()
            print("bpfsight pktstat: this kernel has no tcx links: tc filters through "
                  "netlink instead (a killed pktstat leaves them attached)", file=sys.stderr)
    obj.attach_tc_netlink([("pktstat_ingress", False), ("pktstat_egress", True)],
                          ifindex, enter=lambda: netns.entered(ns))


def interface_rows(keys, values):
    """(ifindex, direction, protocol, port, packets, bytes) of a read of the counts map (per-CPU
    values summed)."""
    if not len(keys):
        return []
    packets = values["packets"].sum(axis=1).tolist()
    nbytes = values["bytes"].sum(axis=1).tolist()
    return [(int(k["ifindex"]), DIRECTIONS.get(int(k["dir"]), "?"),
             protocol(int(k["ethertype"]), int(k["proto"])), int(k["port"]), n, b)
            for k, n, b in zip(keys, packets, nbytes)]


class Pktstat(Tool):
    name = "pktstat"
    summary = "packets and bytes on an interface by direction, protocol and port"
    description = (
        "Count what crosses one network interface, by direction, protocol and port (for TCP\n"
        "and UDP the lower of the two ports: the service's, as a rule), in the kernel: a tc\n"
        "program on each direction (tcx links, the default) or an XDP program (--xdp: ingress\n"
        "only, before the stack). The programs never drop or change a packet. They are\n"
        "attached through links owned by this process, so nothing stays attached after it\n"
        "exits, however it ends (SIGKILL included), and no qdisc is added or touched. On a\n"
        "kernel without tcx links (before 6.6), or with --netlink, they are tc filters on a\n"
        "clsact qdisc instead: removed at exit, Ctrl-C and SIGTERM (and the qdisc, if pktstat\n"
        "added it), but left behind by SIGKILL.\n"
        "--netns NAME: an interface inside a network namespace made with `ip netns add`.")

    intervals = True
    options = (
        Option("-i", "--interface", metavar="IFACE", help="the interface to count on"),
        flag("--tc", help="tc programs on both directions (tcx links; the default)",
             group="hook"),
        flag("--xdp", help="an XDP program on ingress", group="hook"),
        flag("--netlink", help="tc programs as filters on a clsact qdisc through netlink, as on "
                               "kernels without tcx links (chosen by itself there); a qdisc it "
                               "adds is removed at exit, an existing one stays; a killed "
                               "process leaves them attached", group="hook"),
        Option("--netns", metavar="NAME", help="the network namespace the interface is in"),
        Option("-n", "--top", type=positive_int("top"), default=20,
               help="print at most this many rows per interval (default 20)"),
        TIMESTAMP)

    def configure(self, spec, opts):
        if not opts.interface:
            raise UsageError("-i IFACE is required (the interface to count on)")
        with netns.entered(opts.netns):  # a bad name or interface: a usage error, before load
            self._ifindex = netns.interface_index(opts.interface)
        if opts.xdp:
            disable_programs(spec, "pktstat_ingress", "pktstat_egress")
        else:
            disable_programs(spec, "pktstat_xdp")

    def banner_for(self, opts):
        hook = "XDP (ingress)" if opts.xdp else "tc (ingress and egress)"
        where = f" in netns {opts.netns}" if opts.netns else ""
        return f"Counting packets on {opts.interface}{where} with {hook}... Hit Ctrl-C to end."

    def attach(self, obj, opts):
        attach_counting(obj, self._ifindex, opts.netns, opts.xdp, opts.netlink)

    def collect(self, obj, opts):
        """Rows {dir, proto, port, packets, bytes} since the last call, largest first; a row
        with proto "uncounted" holds what came when the map was full."""
        keys, values = obj.map("counts").read_all(delete=True)
        rows = [{"dir": d, "proto": proto, "port": port, "packets": n, "bytes": b}
                for _, d, proto, port, n, b in interface_rows(keys, values)]
        lost = obj.map("uncounted")
        _, over = lost.read_all()
        missed = int(over["packets"].sum()) if len(over) else 0
        if missed:
            rows.append({"dir": "?", "proto": "uncounted", "port": 0, "packets": missed,
                         "bytes": int(over["bytes"].sum())})
        return sorted(rows, key=lambda r: (-r["bytes"], r["dir"], r["proto"], r["port"]))

    def render(self, rows, opts, out):
        out.text(ROW % ("DIR", "PROTO", "PORT", "PACKETS", "BYTES"))
        for r in rows[:opts.top]:
            out.text(ROW % (r["dir"], r["proto"], r["port"] or "-", r["packets"], r["bytes"]))
        if len(rows) > opts.top:
            out.text(f"({len(rows) - opts.top} more rows)")
