"""bigallocs: page allocations of order >= N per process and order, per interval. The process
is the one running when the page was allocated: allocations made in interrupt context (network
receive, for one) land on whichever task the interrupt hit."""
from ..report.grouped import first_comm, sum_per_cpu
from ..tool import TIMESTAMP, Option, Tool, positive_int

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

    intervals = target = True
    options = (
        Option("-o", "--min-order", type=order_arg, default=1,
               help="count allocations of at least this order (default 1: > 1 page)"),
        Option("-r", "--rows", type=positive_int("rows"), default=20,
               help="maximum rows to print, default 20"),
        TIMESTAMP)

    def banner_for(self, opts):
        return f"Tracing page allocations of order >= {opts.min_order}... Hit Ctrl-C to end."

    def configure(self, spec, opts):
        spec.set_global("targ_min_order", opts.min_order)

    def collect(self, obj, opts):
        """The busiest --rows rows {pid, comm, order, count, pages, kbytes, failed}, then
        {"total": {count, pages, failed}} over every row."""
        import mmap
        rows = rows_of(*obj.map("allocs").read_all(delete=True))
        total = {"count": sum(r["count"] for r in rows), "pages": sum(r["pages"] for r in rows),
                 "failed": sum(r["failed"] for r in rows)}
        for r in rows:
            r["kbytes"] = r["pages"] * mmap.PAGESIZE // 1024
        return rows[:opts.rows] + [{"total": total}]

    def render(self, records, opts, out):
        import mmap
        *rows, last = records
        out.text(HEADER % ("PID", "COMM", "ORDER", "COUNT", "PAGES", "KBYTES", "FAILED"))
        for r in rows:
            out.text(ROW % (r["pid"], r["comm"], r["order"], r["count"], r["pages"],
                            r["kbytes"], r["failed"]))
        total = last["total"]
        out.text(f"Total: {total['count']} allocations, {total['pages']} pages "
                 f"({total['pages'] * mmap.PAGESIZE // 1024} KB), {total['failed']} failed")
