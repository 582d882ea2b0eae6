"""Histograms keyed by process or thread (runqlat/cpudist -P / -L), printed as BCC's do."""
from .histogram import format_log2


def render_comm_hists(hists, out, label=None):
    """One histogram per key; label is "pid", "tid" or None (key 0: all tasks)."""
    for h in hists:
        if label:
            out.text(f"\n{label} = {h.labels[label]} {h.labels['comm']}")
        out.text(format_log2(h), end="")
