"""tcpsynbl: TCP listen backlog length at each completed handshake, as a log2 histogram per
backlog limit (BCC's tcpsynbl)."""
from .. import net
from ..report.histogram import Log2Histogram, format_log2
from ..tool import TIMESTAMP, Tool


class Tcpsynbl(Tool):
    name = "tcpsynbl"
    summary = "TCP SYN backlog size as a histogram"
    description = (
        "Show the TCP SYN backlog (BCC's tcpsynbl): the listener's accept-queue length each\n"
        "time a handshake completes, as a histogram per backlog limit (backlog_max).\n\n"
        "Read at sock:inet_sock_set_state LISTEN->SYN_RECV (the new socket, cloned from the\n"
        "listener with its queue counters) instead of a kprobe on tcp_v4/v6_syn_recv_sock.\n"
        "Same values, except that a handshake refused because the queue was already full\n"
        "creates no socket and is not counted (BCC counts it with the full length).")

    banner = "Tracing SYN backlog size. Ctrl-C to end."
    intervals = True
    options = (TIMESTAMP, *net.FAMILY_OPTIONS)

    def configure(self, spec, opts):
        net.set_net_filters(spec, opts)

    def collect(self, obj, opts):
        """A Log2Histogram of accept-queue lengths per backlog limit (label backlog_max)."""
        keys, values = obj.map("hists").read_all(delete=True)
        return [Log2Histogram.from_record(val, "backlog", backlog_max=key)
                for key, val in sorted(zip(keys.tolist(), values), key=lambda kv: kv[0])]

    def render(self, hists, opts, out):
        for h in hists:
            out.text(f"\nbacklog_max = {h.labels['backlog_max']}")
            out.text(format_log2(h), end="")
