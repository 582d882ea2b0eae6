"""slabratetop: kernel slab allocations per cache per interval (BCC's slabratetop)."""
from ..report.grouped import comm_of
from ..report.output import top_screen
from ..tool import Option, Tool, flag, positive_int

SORTS = {"count": "count", "size": "bytes"}


class Slabratetop(Tool):
    name = "slabratetop"
    summary = "kernel slab cache allocation rate per cache, top style"
    description = (
        "Kernel slab allocations per cache every interval, top style (BCC's slabratetop),\n"
        "counted in the kernel from kmem:kmem_cache_alloc (its cache's name and object size).\n"
        "kmalloc() has no cache in its tracepoint: its allocations count under the size\n"
        "class they were served from, named kmalloc-BYTES as the kernel names those caches.\n"
        "Frees are not subtracted: this is a rate, not what is outstanding.")
    target = intervals = True
    default_interval = 1
    spaced = False
    options = (
        flag("-C", "--noclear", help="don't clear the screen"),
        Option("-r", "--maxrows", type=positive_int("maxrows"), default=20,
               help="maximum rows to print, default 20"),
        Option("-s", "--sort", choices=sorted(SORTS), default="size",
               help="sort column, default size"))

    def banner_for(self, opts):
        return f"Tracing... Output every {opts.interval} secs. Hit Ctrl-C to end"

    def collect(self, obj, opts):
        """The --maxrows rows {cache, count, bytes} with the most allocations (or bytes)."""
        keys, values = obj.map("caches").read_all(delete=True)
        rows = {comm_of(k["name"]): (int(v["count"]), int(v["bytes"]))
                for k, v in zip(keys, values)}
        keys, values = obj.map("kmalloc_sizes").read_all(delete=True)
        for size, v in zip(keys, values):
            name = f"kmalloc-{int(size)}"
            count, nbytes = rows.get(name, (0, 0))
            rows[name] = (count + int(v["count"]), nbytes + int(v["bytes"]))
        out = [{"cache": name, "count": c, "bytes": b} for name, (c, b) in rows.items()]
        out.sort(key=lambda r: r[SORTS[opts.sort]], reverse=True)
        return out[:opts.maxrows]

    def render(self, rows, opts, out):
        top_screen(out, opts.noclear)
        out.text("%-32s %6s %10s" % ("CACHE", "ALLOCS", "BYTES"))
        for r in rows:
            out.text("%-32s %6d %10d" % (r["cache"], r["count"], r["bytes"]))
