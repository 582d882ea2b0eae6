"""tcprtt: TCP round-trip times as log2 histograms (BCC's tcprtt)."""
import math

from .. import net
from ..report.histogram import Log2Histogram, format_log2
from ..tool import FOREVER, TIMESTAMP, Option, Tool, flag, positive_int


class Tcprtt(Tool):
    name = "tcprtt"
    summary = "summarize TCP round-trip time as a histogram"
    description = (
        "Summarize TCP RTT as a histogram (BCC's tcprtt): the smoothed RTT (tcp_sock's srtt)\n"
        "each time an established connection receives a segment (tcp:tcp_probe, in\n"
        "tcp_rcv_established, where BCC puts its kprobe). -i/-d as BCC's: print every\n"
        "INTERVAL seconds, for DURATION seconds in all.")

    banner = "Tracing TCP RTT... Hit Ctrl-C to end."
    options = (
        Option("-i", "--interval", type=positive_int("interval"), default=FOREVER,
               help="summary interval, seconds"),
        Option("-d", "--duration", type=positive_int("duration"), default=None,
               help="total duration of trace, seconds"),
        TIMESTAMP,
        flag("-m", "--milliseconds", help="millisecond histogram"),
        Option("-p", "--lport", type=net.port_list, help="filter for local port(s)"),
        Option("-P", "--rport", type=net.port_list, help="filter for remote port(s)"),
        Option("-a", "--laddr", type=net.ip_address, help="filter for local address"),
        Option("-A", "--raddr", type=net.ip_address, help="filter for remote address"),
        flag("-b", "--byladdr", help="show sockets histogram by local address", group="by"),
        flag("-B", "--byraddr", help="show sockets histogram by remote address", group="by"),
        flag("-e", "--extension", help="show extension summary (average)"),
        *net.FAMILY_OPTIONS)

    def configure(self, spec, opts):
        # BCC's -d: the whole run, in -i steps (one report without -i): the generic loop's
        # interval and count
        if opts.duration and opts.interval == FOREVER:
            opts.interval = opts.duration
        opts.count = max(1, math.ceil(opts.duration / opts.interval)) if opts.duration else None
        net.set_net_filters(spec, opts, lports=opts.lport, rports=opts.rport)
        spec.set_globals(targ_ms=opts.milliseconds, targ_by_laddr=opts.byladdr,
                         targ_by_raddr=opts.byraddr)
        for which, value in (("laddr", opts.laddr), ("raddr", opts.raddr)):
            if value:
                spec.set_globals(**{f"targ_{which}_family": value[0], f"targ_{which}": value[1]})

    def collect(self, obj, opts):
        """One Log2Histogram per address (labels "laddr" or "raddr" with -b/-B), since the
        last call."""
        keys, values = obj.map("rtts").read_all(delete=True)
        unit = "msecs" if opts.milliseconds else "usecs"
        label = "laddr" if opts.byladdr else "raddr" if opts.byraddr else None
        hists = []
        for key, val in sorted(zip(keys, values), key=lambda kv: kv[0].tolist()):
            labels = {label: net.addr(int(key["family"]), key["addr"])} if label else {}
            hists.append(Log2Histogram.from_record(val, unit, **labels))
        return hists

    def render(self, hists, opts, out):
        for h in hists:
            if "laddr" in h.labels:
                out.text(f"Local Address:  {h.labels['laddr']}")
            if "raddr" in h.labels:
                out.text(f"Remote Address: {h.labels['raddr']}")
            if opts.extension:
                out.text(f"[AVG {h.unit[:-1]}] = {h.mean:.0f}")
            out.text(format_log2(h), end="")
