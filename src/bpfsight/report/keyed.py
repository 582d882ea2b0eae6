"""User side of bpf/include/comm_hist.bpf.h: histograms keyed by process or thread, each
labelled with its comm, printed as BCC's runqlat/cpudist do with -P / -L, one JSON record each."""
from .histogram import Log2Histogram, format_log2, hist_dtype


def configure(spec, args):
    """-P / -L / -m into the object's globals; keyed, the one-slot array becomes a hash."""
    spec.set_globals(targ_per_process=args.pids, targ_per_thread=args.tids,
                     targ_ms=args.milliseconds)
    if args.pids or args.tids:
        keyed_histograms(spec)


def keyed_histograms(spec):
    """A histogram per tgid or tid, in a hash, instead of the one-slot array."""
    from ..bpf.maps import HASH
    spec.maps["hists"].reshape(HASH, 10240)


def comm_hist_dtype():
    """numpy dtype of struct comm_hist."""
    import numpy as np
    return np.dtype([("h", hist_dtype()), ("comm", "S16")])


def print_comm_hists(out, tool, keys, values, unit, label=None):
    """One histogram per key, in key order; label is "pid", "tid" or None (key 0: all tasks).
    Returns the Log2Histograms printed."""
    printed = []
    for key, val in sorted(zip(keys.tolist(), values), key=lambda kv: kv[0]):
        h = Log2Histogram.from_record(val["h"], unit)
        if label:
            h.labels = {label: key, "comm": val["comm"].decode(errors="replace")}
            out.text(f"\n{label} = {key} {h.labels['comm']}")
        out.text(format_log2(h), end="")
        out.record({"tool": tool, **h.to_dict()})
        printed.append(h)
    return printed

