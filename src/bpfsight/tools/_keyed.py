"""What runqlat and cpudist share (bpf/include/comm_hist.bpf.h): one histogram for all tasks,
or one per process (-P) or thread (-L) labelled with its comm, in msecs with -m."""
from ..report.histogram import Log2Histogram
from ..tool import flag

OPTIONS = (flag("-m", "--milliseconds", help="millisecond histogram"),
           flag("-P", "--pids", help="print a histogram per process ID", group="key"),
           flag("-L", "--tids", help="print a histogram per thread ID", group="key"))


def configure(spec, opts):
    """-P / -L / -m into the object's globals; keyed, the one-slot array becomes a hash (a
    histogram per tgid or tid)."""
    from ..bpf.maps import HASH
    spec.set_globals(targ_per_process=opts.pids, targ_per_thread=opts.tids,
                     targ_ms=opts.milliseconds)
    if opts.pids or opts.tids:
        spec.maps["hists"].reshape(HASH, 10240)


def label(opts):
    return "pid" if opts.pids else "tid" if opts.tids else None


def collect(obj, opts):
    """The histograms since the last call, in key order: Log2Histogram labelled {pid or tid:
    key, comm} when keyed."""
    keys, values = obj.map("hists").drain()
    unit = "msecs" if opts.milliseconds else "usecs"
    by = label(opts)
    hists = []
    for key, val in sorted(zip(keys.tolist(), values), key=lambda kv: kv[0]):
        labels = {by: key, "comm": val["comm"].decode(errors="replace")} if by else {}
        hists.append(Log2Histogram.from_record(val["h"], unit, **labels))
    return hists
