"""hardirqs: time spent in hard interrupt handlers, per handler name (BCC's hardirqs)."""
from ..report.grouped import comm_of
from ._irqs import IrqTool, irq_options


def irq_name(key):
    """struct irq_key (bpf/hardirqs.bpf.c) -> the handler's name."""
    return comm_of(key["name"])


class Hardirqs(IrqTool):
    name = "hardirqs"
    summary = "time spent in hard interrupt handlers"
    description = ("Summarize hard irq event time as totals or histograms (BCC's hardirqs), per "
                   "handler name as in /proc/interrupts, from irq:irq_handler_entry/exit.\n"
                   "Interrupts handled without a registered handler (local APIC timer, IPIs: "
                   "the LOC, RES, CAL... rows of /proc/interrupts) are not seen.")
    column, width, what = "HARDIRQ", 26, "hardirq"
    name_of = staticmethod(irq_name)
    options = irq_options("--count", "show event counts instead of timing")
