"""bigallocs: page allocations of order >= N per process and order, per interval. The process
is the one running when the page was allocated: allocations made in interrupt context (network
receive, for one) land on whichever task the interrupt hit."""
from ..report.grouped import first_comm, sum_per_cpu
from ..report.output import clock_hms
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, positive_int, select_hooks)

MAX_ORDER = 10  # MAX_PAGE_ORDER on most configurations; larger orders never come from buddy
HEADER = "%-7s %-16s %5s %10s %10s %12s %7s"
ROW = "%-7d %-16s %5d %10d %10d %12d %7d"


def order_arg(text):
    try:
        order = int(text)
    except ValueError:
        order = -1
    if not 0 <= order <= MAX_ORDER:
        import argparse
        raise argparse.ArgumentTypeError(f"invalid order {text!r}: 0 to {MAX_ORDER}")
    return order


def value_dtype():
    import numpy as np
    return np.dtype([("count", "<u8"), ("failed", "<u8"), ("comm", "S16")])


def rows_of(keys, values):
    """One dict per (process, order), largest page count first."""
    sums = sum_per_cpu(values, ("count", "failed"))
    rows = [{"pid": int(k["tgid"]), "comm": first_comm(values["comm"][i]), "order": int(k["order"]),
             "count": int(sums["count"][i]), "pages": int(sums["count"][i]) << int(k["order"]),
             "failed": int(sums["failed"][i])} for i, k in enumerate(keys)]
    return sorted(rows, key=lambda r: (-r["pages"], r["pid"], r["order"]))


class Bigallocs(Tool):
    name = "bigallocs"
    summary = "large page allocations (order >= N) by process"
    description = ("Count page allocations (kmem:mm_page_alloc) of order >= N by allocating "
                   "process and order: count, pages, KB, failed attempts. Allocations made in "
                   "interrupt context are charged to whichever task was running.")

    def add_arguments(self, p):
        p.add_argument("-o", "--min-order", type=order_arg, default=1,
                       help="count allocations of at least this order (default 1: > 1 page)")
        p.add_argument("-r", "--rows", type=positive_int("rows"), default=20,
                       help="maximum rows to print, default 20")
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        add_target_args(p)
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        import mmap
        out = output_for(args)
        spec = open_spec("bigallocs", args, self.name)
        spec.set_global("targ_min_order", args.min_order)
        select_hooks(spec, self.name)
        page_kb = mmap.PAGESIZE // 1024
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            allocs = obj.map("allocs", key=[("tgid", "<u4"), ("order", "<u4")],
                             value=value_dtype)
            out.banner(f"Tracing page allocations of order >= {args.min_order}... "
                       "Hit Ctrl-C to end.")

            def tick():
                rows = rows_of(*allocs.read_all(delete=True))
                self._render(out, args, rows, page_kb)

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    def _render(self, out, args, rows, page_kb):
        out.text()
        if args.timestamp:
            out.text(clock_hms())
        out.text(HEADER % ("PID", "COMM", "ORDER", "COUNT", "PAGES", "KBYTES", "FAILED"))
        for r in rows[:args.rows]:
            r["kbytes"] = r["pages"] * page_kb
            out.text(ROW % (r["pid"], r["comm"], r["order"], r["count"], r["pages"],
                            r["kbytes"], r["failed"]))
            out.record({"tool": self.name, **r})
        total = {"count": sum(r["count"] for r in rows), "pages": sum(r["pages"] for r in rows),
                 "failed": sum(r["failed"] for r in rows)}
        out.text(f"Total: {total['count']} allocations, {total['pages']} pages "
                 f"({total['pages'] * page_kb} KB), {total['failed']} failed")
        out.record({"tool": self.name, "total": total})
