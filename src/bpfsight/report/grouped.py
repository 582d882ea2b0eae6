"""Output helpers for tools that aggregate by key (command, process, order, kind): one log2
histogram per key under a title line, per-CPU values summed, kernel comm strings decoded."""
from .histogram import format_log2


def render_histograms(out, hists):
    """Log2Histograms in print order, each under its title (when it has one)."""
    for hist in hists:
        if hist.title:
            out.text(f"\n{hist.title}")
        out.text(format_log2(hist), end="")


def comm_of(raw):
    """A kernel char array (`char comm[16]`, a path, a name: numpy bytes) as text, up to its
    first NUL: the one decoder of C strings."""
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


def sum_per_cpu(values, fields):
    """{field: per-key totals} of a per-CPU map's values (shape keys x CPUs)."""
    return {f: values[f].sum(axis=1) for f in fields}


def first_comm(comms):
    """The first non-empty comm among one key's per-CPU slots."""
    return next((comm_of(c) for c in comms if bytes(c)[:1] not in (b"", b"\0")), "")
