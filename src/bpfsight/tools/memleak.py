"""memleak: outstanding allocations by stack, kept in the kernel (BCC's memleak): a process's
libc allocations (-p PID) or the kernel's (kmalloc, kmem_cache, pages)."""
import time

from ..binaries import resolve_binary
from ..profile.stacks import STACK_NONE, StackDecoder, describe_errors, stack_errors
from ..profile.symbols import Symbolizer
from ..report.output import clock_hms
from ..tool import Option, Tool, flag, positive_int

# (function, entry program, return program): each traced allocator of the C library
ALLOCATORS = (
    ("malloc", "memleak_malloc_enter", "memleak_alloc_exit"),
    ("calloc", "memleak_calloc_enter", "memleak_alloc_exit"),
    ("realloc", "memleak_realloc_enter", "memleak_alloc_exit"),
    ("posix_memalign", "memleak_posix_memalign_enter", "memleak_posix_memalign_exit"),
    ("aligned_alloc", "memleak_aligned_alloc_enter", "memleak_alloc_exit"),
    ("memalign", "memleak_aligned_alloc_enter", "memleak_alloc_exit"),
    ("valloc", "memleak_valloc_enter", "memleak_alloc_exit"),
    ("pvalloc", "memleak_valloc_enter", "memleak_alloc_exit"),
    ("mmap", "memleak_mmap_enter", "memleak_alloc_exit"),
    ("free", "memleak_free_enter", None),
    ("munmap", "memleak_munmap_enter", None))


def whole(what, unit):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            import argparse
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: expected {unit} (>= 0)")
        return value
    return parse


size_arg = whole("size", "bytes")


class Memleak(Tool):
    name = "memleak"
    summary = "outstanding memory allocations by stack (leak detection)"
    description = (
        "Trace outstanding memory allocations and print, each interval, the stacks with the\n"
        "most bytes allocated and not yet freed (BCC's memleak). With -p PID: the process's\n"
        "C library allocators (malloc, calloc, realloc, posix_memalign, aligned_alloc,\n"
        "memalign, valloc, pvalloc, mmap; free, munmap) through uprobes; only the outermost\n"
        "of nested calls counts (realloc(NULL, n) calling malloc is one block). Without -p:\n"
        "the kernel's kmalloc, kmem_cache and page allocations (kmem tracepoints; pages by\n"
        "frame number), optionally for a cgroup (-c). User stacks are walked by frame pointer\n"
        "from the allocator's return: code built without them shows fewer frames. Unlike\n"
        "BCC: -c is a cgroup, not a command to run; -a lists the blocks of the stacks shown;\n"
        "no -t/--wa-missing-free/--percpu (a block allocated again at an address still\n"
        "recorded replaces it, which is what --wa-missing-free does).")
    target = intervals = True
    default_interval = 5
    spaced = False
    options = (
        flag("-a", "--show-allocs", help="show allocation addresses and sizes as well as call "
                                         "stacks"),
        Option("-o", "--older", type=whole("age", "milliseconds"), default=500,
               help="prune allocations younger than this age in milliseconds (default 500)"),
        flag("--combined-only", help="show combined allocation statistics only (kept per "
                                     "stack in the kernel; -o and -a do not apply)"),
        Option("-s", "--sample-rate", type=positive_int("sample rate"), default=1,
               help="sample every N-th allocation to decrease the overhead"),
        Option("-T", "--top", type=positive_int("top"), default=10,
               help="display only this many top allocating stacks (by size)"),
        Option("-z", "--min-size", type=size_arg, help="capture only allocations larger than "
                                                       "or equal to this size"),
        Option("-Z", "--max-size", type=size_arg, help="capture only allocations smaller than "
                                                       "or equal to this size"),
        Option("-O", "--obj", default="c",
               help="attach to allocator functions in the specified object (default: libc)"))

    def banner_for(self, opts):
        if opts.pid:
            return f"Attaching to pid {opts.pid}, Ctrl+C to quit."
        return "Attaching to kernel allocators, Ctrl+C to quit."

    def configure(self, spec, opts):
        from ..errors import UsageError
        if opts.min_size is not None and opts.max_size is not None and \
                opts.min_size > opts.max_size:
            raise UsageError(f"min size ({opts.min_size}) must be <= max size ({opts.max_size})")
        spec.set_globals(min_size=opts.min_size or 0,
                         max_size=(1 << 64) - 1 if opts.max_size is None else opts.max_size,
                         sample_rate=opts.sample_rate)
        spec.maps["events"].max_entries = 4096  # unused: stacks are read per interval
        user = bool(opts.pid)
        for name, prog in spec.programs.items():
            if prog.section.startswith("tracepoint/kmem/"):
                prog.autoload = not user
        self._lib = resolve_binary(opts.obj, opts.pid) if user else None
        self._symbolizer = Symbolizer()

    def attach(self, obj, opts):
        if not opts.pid:
            obj.attach_all()
            return
        self._symbolizer.capture(opts.pid)
        for fn, entry, ret in ALLOCATORS:
            obj.attach_uprobe(entry, self._lib, fn, pid=opts.pid)
            if ret:
                obj.attach_uprobe(ret, self._lib, fn, pid=opts.pid, retprobe=True)

    def collect(self, obj, opts):
        """The --top stacks by outstanding bytes, fewest first (BCC prints the largest last):
        {stack_id, bytes, allocs, stack, [addresses]}; then {"stack_errors": {...}}."""
        if opts.combined_only:
            keys, values = obj.map("combined_allocs").read_all()
            groups = {self._sid(k): {"bytes": int(v["total_size"]),
                                     "allocs": int(v["number_of_allocs"])}
                      for k, v in zip(keys, values) if int(v["number_of_allocs"]) > 0}
        else:
            groups = self._outstanding(obj, opts)
        top = sorted(groups.items(), key=lambda kv: (kv[1]["bytes"], kv[0]))[-opts.top:]
        stacks = self._stacks(obj, opts, [sid for sid, _ in top])
        rows = [{"stack_id": sid, "bytes": g["bytes"], "allocs": g["allocs"],
                 "stack": stacks[sid], **({"addresses": g["addresses"]} if "addresses" in g
                                         else {})} for sid, g in top]
        return rows + [{"stack_errors": stack_errors(obj.map("stack_errors"))}]

    @staticmethod
    def _sid(key):
        return int(key) - (1 << 32) if int(key) >= 1 << 31 else int(key)

    @staticmethod
    def _outstanding(obj, opts):
        """Outstanding blocks older than -o, grouped by stack id."""
        keys, values = obj.map("allocs").read_all()
        born_before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) - opts.older * 1_000_000
        groups = {}
        for addr, size, ts, sid in zip(keys.tolist(), values["size"].tolist(),
                                       values["ts_ns"].tolist(), values["stack_id"].tolist()):
            if ts > born_before:
                continue
            g = groups.setdefault(sid, {"bytes": 0, "allocs": 0})
            g["bytes"] += size
            g["allocs"] += 1
            if opts.show_allocs:
                g.setdefault("addresses", []).append({"addr": addr, "size": size})
        return groups

    def _stacks(self, obj, opts, sids):
        """{stack id: frame names, leaf first}."""
        pid = opts.pid or 0
        if pid:
            self._symbolizer.refresh()
        reqs = {sid: (pid, STACK_NONE, sid) if pid else (0, sid, STACK_NONE) for sid in sids}
        pairs = StackDecoder(obj.map("stackmap"), self._symbolizer).decode(list(reqs.values()))
        return {sid: list(pairs[r].user_names() if pid else
                          pairs[r].kernel_names(_PLAIN)) for sid, r in reqs.items()}

    def render(self, records, opts, out):
        *rows, errors = records
        out.text("[%s] Top %d stacks with outstanding allocations:" % (clock_hms(), opts.top))
        for r in rows:
            for a in r.get("addresses", ()):
                out.text("\taddr = %x size = %s" % (a["addr"], a["size"]))
        for r in rows:
            out.text("\t%d bytes in %d allocations from stack\n\t\t%s" % (
                r["bytes"], r["allocs"], "\n\t\t".join(r["stack"])))
        warning = describe_errors(errors["stack_errors"])
        if warning:
            out.text(warning)


class _PlainFormat:
    annotate = False


_PLAIN = _PlainFormat()
