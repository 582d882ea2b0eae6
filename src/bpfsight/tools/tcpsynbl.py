"""tcpsynbl: TCP listen backlog length at each completed handshake, as a log2 histogram per
backlog limit (BCC's tcpsynbl)."""
from .. import net
from ..report.histogram import Log2Histogram, format_log2, hist_dtype
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, interval_loop,
                    open_spec, output_for, select_hooks, timestamp_line)


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

    def add_arguments(self, p):
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        net.add_family_args(p)
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("tcpsynbl", args, self.name)
        net.set_net_filters(spec, args)
        select_hooks(spec, self.name)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            hists = obj.map("hists", key="<u4", value=hist_dtype)
            out.banner("Tracing SYN backlog size. Ctrl-C to end.")

            def tick():
                keys, values = hists.read_all(delete=True)
                out.text()
                timestamp_line(args, out)
                for key, val in sorted(zip(keys.tolist(), values), key=lambda kv: kv[0]):
                    h = Log2Histogram.from_record(val, "backlog", backlog_max=key)
                    out.text(f"\nbacklog_max = {key}")
                    out.text(format_log2(h), end="")
                    out.record({"tool": self.name, **h.to_dict()})

            interval_loop(stop, args.interval, args.count, tick)
        return 0
