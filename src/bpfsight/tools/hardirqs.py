"""hardirqs: time spent in hard interrupt handlers, per handler name (BCC's hardirqs)."""
from ..tool import Tool
from ._irqs import add_irq_arguments, run_irq_tool

IRQ_NAME_LEN = 32  # struct irq_key in bpf/hardirqs.bpf.c


def irq_name(key):
    return bytes(key).split(b"\0", 1)[0].decode(errors="replace")


class Hardirqs(Tool):
    name = "hardirqs"
    summary = "time spent in hard interrupt handlers"
    description = ("Summarize hard irq event time as totals or histograms (BCC's hardirqs), per "
                   "handler name as in /proc/interrupts, from irq:irq_handler_entry/exit.\n"
                   "Interrupts handled without a registered handler (local APIC timer, IPIs: "
                   "the LOC, RES, CAL... rows of /proc/interrupts) are not seen.")

    def add_arguments(self, p):
        add_irq_arguments(p, "--count", "show event counts instead of timing")
        p.set_defaults(count_flag="--count")

    def run(self, args):
        return run_irq_tool(self.name, args, f"V{IRQ_NAME_LEN}", irq_name, "HARDIRQ", 26,
                            "hardirq")
