"""softirqs: time spent in soft interrupts, per vector (BCC's softirqs)."""
from ._irqs import IrqTool, irq_options

# enum of include/linux/interrupt.h, named as BCC prints them
VECTORS = ["hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched",
           "hrtimer", "rcu"]


def vector_name(vec):
    vec = int(vec)
    return VECTORS[vec] if vec < len(VECTORS) else f"vec{vec}"


class Softirqs(IrqTool):
    name = "softirqs"
    summary = "time spent in soft interrupts"
    description = ("Summarize soft irq event time as totals or histograms (BCC's softirqs), "
                   "from irq:softirq_entry/exit.")
    column, width, what = "SOFTIRQ", 16, "softirq"
    name_of = staticmethod(vector_name)
    options = irq_options("--events", "show the number of soft irq events")
