"""ioctllat: ioctl(2) latency as log2 histograms per command number (and per process with -P),
each command decoded into its _IOC direction, type, number and argument size."""
from ..ioctls import decode_cmd, describe_cmd, parse_cmd
from ..report.histogram import Log2Histogram
from ..report.grouped import comm_of, render_histograms
from ..tool import TIMESTAMP, Option, Tool, flag

class Ioctllat(Tool):
    name = "ioctllat"
    summary = "ioctl latency histogram per command and process"
    description = ("Summarize ioctl(2) latency as a histogram per command number (decoded into "
                   "_IOC dir/type/nr/size), from the syscalls:sys_enter/exit_ioctl tracepoints.")

    banner = "Tracing ioctl latency... Hit Ctrl-C to end."
    intervals = target = True
    options = (TIMESTAMP, flag("-m", "--milliseconds", help="millisecond histogram"),
               flag("-P", "--pids", help="print a histogram per process ID"),
               Option("-C", "--cmd", help="trace this command only (number or name, e.g. FIONREAD)"))

    def configure(self, spec, opts):
        spec.set_globals(targ_per_process=opts.pids, targ_ms=opts.milliseconds)
        if opts.cmd is not None:
            spec.set_globals(targ_filter_cmd=True, targ_cmd=parse_cmd(opts.cmd))

    def collect(self, obj, opts):
        """A titled Log2Histogram per command (and process, with -P), labelled with the
        decoded command, errors (and pid, comm)."""
        keys, values = obj.map("hists").read_all(delete=True)
        unit = "msecs" if opts.milliseconds else "usecs"
        order = sorted(zip(keys.tolist(), values), key=lambda kv: (kv[0][1], kv[0][0]))
        return [self._hist(k, v, unit, opts.pids) for k, v in order]

    def render(self, hists, opts, out):
        render_histograms(out, hists)

    @staticmethod
    def _hist(key, val, unit, per_process):
        cmd, tgid = key
        labels = {**decode_cmd(cmd), "errors": int(val["errors"])}
        title = f"cmd = {describe_cmd(cmd)}"
        if per_process:
            labels.update(pid=tgid, comm=comm_of(val["comm"]))
            title += f"  pid = {tgid} {labels['comm']}"
        if labels["errors"]:
            title += f"  errors = {labels['errors']}"
        hist = Log2Histogram.from_record(val["h"], unit, **labels)
        hist.title = title
        return hist
