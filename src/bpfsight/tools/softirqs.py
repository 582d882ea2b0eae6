"""softirqs: time spent in soft interrupts, per vector (BCC's softirqs)."""
from ..tool import Tool
from ._irqs import add_irq_arguments, run_irq_tool

# enum of include/linux/interrupt.h, named as BCC prints them
VECTORS = ["hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched",
           "hrtimer", "rcu"]


def vector_name(vec):
    vec = int(vec)
    return VECTORS[vec] if vec < len(VECTORS) else f"vec{vec}"


class Softirqs(Tool):
    name = "softirqs"
    summary = "time spent in soft interrupts"
    description = ("Summarize soft irq event time as totals or histograms (BCC's softirqs), "
                   "from irq:softirq_entry/exit.")

    def add_arguments(self, p):
        add_irq_arguments(p, "--events", "show the number of soft irq events")
        p.set_defaults(count_flag="--events")

    def run(self, args):
        return run_irq_tool(self.name, args, "<u4", vector_name, "SOFTIRQ", 16, "softirq")
