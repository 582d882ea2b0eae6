"""cachestat: page cache hits, misses, dirtied pages and hit ratio per interval (BCC's
cachestat), approximated from tracepoints."""
import mmap

from ..report.output import clock_hms
from ..tool import TIMESTAMP, Tool

ACCESSED, ADDED, DIRTIED = range(3)  # bpf/cachestat.bpf.c


def ratios(accessed, added, dirtied):
    """BCC's arithmetic: pages added to the cache for a write are not read misses, so misses
    are additions less dirtied pages; hits are the accesses that were not misses."""
    misses = max(0, added - dirtied)
    hits = accessed - misses
    if hits < 0:  # readahead added more than was read
        misses, hits = accessed, 0
    return {"hits": hits, "misses": misses, "dirties": dirtied,
            "hit_ratio": hits / accessed if accessed else 0.0,
            "accessed": accessed, "added": added}


def meminfo_mb(*keys):
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in keys:
                values[name] = int(rest.split()[0]) / 1024
    return [values.get(k, 0.0) for k in keys]


class Cachestat(Tool):
    name = "cachestat"
    summary = "page cache hits, misses, dirties and hit ratio (approx)"
    description = (
        "Page cache hits, misses and dirtied pages per interval, with the hit ratio and the\n"
        "Buffers and Cached sizes from /proc/meminfo (BCC's cachestat). All counts are pages.\n\n"
        "APPROXIMATE: BCC counts calls of kernel functions with kprobes; without kprobes\n"
        "the figures come from tracepoints. Accesses are the page ranges read() asks the\n"
        "cache for (mm_filemap_get_pages, cut at end of file), page faults on file mappings\n"
        "(mm_filemap_fault) and fault-around ranges (mm_filemap_map_pages, cut at end of\n"
        "file, which may include pages not cached). Misses are pages added to the cache\n"
        "(mm_filemap_add_to_page_cache) less pages dirtied (writeback_dirty_folio), as in\n"
        "BCC: a write that extends a file adds pages without a read miss. A read cut short\n"
        "still counts its whole range; tmpfs/shmem reads do not pass these tracepoints.\n"
        "-p/-c count only what those processes do (readahead runs in the reader's context).")

    banner = "Tracing page cache (approximate, see --help)... Hit Ctrl-C to end."
    target = intervals = True
    default_interval = 1
    spaced = False
    options = (TIMESTAMP,)

    def header_for(self, opts):
        return ("%-8s " % "TIME" if opts.timestamp else "") + "%8s %8s %8s %8s %12s %10s" % (
            "HITS", "MISSES", "DIRTIES", "HITRATIO", "BUFFERS_MB", "CACHED_MB")

    def configure(self, spec, opts):
        spec.set_global("page_shift", mmap.PAGESIZE.bit_length() - 1)

    def attach(self, obj, opts):
        obj.attach_all()
        self._last = [0, 0, 0]

    def collect(self, obj, opts):
        """One record per interval: hits, misses, dirties, hit_ratio, buffers_mb, cached_mb."""
        keys, values = obj.map("counts").read_all()
        total = dict(zip(keys.tolist(), values.sum(axis=1).tolist()))  # over CPUs
        now = [int(total.get(i, 0)) for i in (ACCESSED, ADDED, DIRTIED)]  # cumulative
        row = ratios(*(a - b for a, b in zip(now, self._last)))
        self._last = now
        row["buffers_mb"], row["cached_mb"] = meminfo_mb("Buffers", "Cached")
        return [row]

    def render(self, records, opts, out):
        for r in records:
            out.text(("%-8s " % clock_hms() if opts.timestamp else "") +
                     "%8d %8d %8d %7.2f%% %12.0f %10.0f" % (
                         r["hits"], r["misses"], r["dirties"], 100 * r["hit_ratio"],
                         r["buffers_mb"], r["cached_mb"]))
