"""vfsstat: file-system calls per second by family (BCC's vfsstat), counted at the syscalls."""
import time

from ..fileio import drop_absent_syscalls
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, select_hooks)

COLUMNS = ("READ", "WRITE", "FSYNC", "OPEN", "CREATE")  # enum stat_type in bpf/vfsstat.bpf.c
APPROX = "syscalls, not VFS calls"


def totals(stats):
    """Cumulative count per family, summed over CPUs."""
    keys, values = stats.read_all()
    sums = dict(zip(keys.tolist(), values.sum(axis=1).tolist()))
    return [int(sums.get(i, 0)) for i in range(len(COLUMNS))]


class Vfsstat(Tool):
    name = "vfsstat"
    summary = "count file-system syscalls by family per interval (approx)"
    description = (
        "File-system calls per second by family (BCC's vfsstat), approx: it counts SYSCALLS,\n"
        "not VFS calls, because the VFS functions need kprobes.\n\n"
        "READ: read, pread64, readv, preadv(2); WRITE: write, pwrite64, writev, pwritev(2);\n"
        "FSYNC: fsync, fdatasync; OPEN: open, openat, openat2, creat, open_by_handle_at;\n"
        "CREATE: creat and opens with O_CREAT (whether or not a file was created).\n"
        "Unlike BCC this counts reads/writes of pipes and sockets too, and misses I/O the\n"
        "kernel does on its own behalf (io_uring, nfsd, sendfile/splice).")

    def add_arguments(self, p):
        add_target_args(p)
        add_output_args(p)
        add_interval_args(p, default_interval=1)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("vfsstat", args, self.name)
        drop_absent_syscalls(spec)
        select_hooks(spec, self.name)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            stats = obj.map("stats", key="<u4", value="<u8")
            last = [[0] * len(COLUMNS)]  # a loaded map starts at zero: no baseline read
            out.banner(f"Tracing file-system syscalls (approx: {APPROX})... Hit Ctrl-C to end.")
            out.text("%-8s  " % "TIME" + "".join(" %6s/s" % c for c in COLUMNS))

            def tick():
                now = totals(stats)
                counts = [n - p for n, p in zip(now, last[0])]
                last[0] = now
                self.show(out, args, counts)

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    def show(self, out, args, counts):
        """Per-second rates over the nominal interval, as BCC prints them (a last, partial
        interval cut short by Ctrl-C is still divided by the full interval)."""
        clock = time.strftime("%H:%M:%S")
        out.text("%-8s: " % clock + "".join(" %8d" % (n // args.interval) for n in counts))
        out.record({"tool": self.name, "time": clock, "interval_s": args.interval,
                    "approx": APPROX, "counts": dict(zip(map(str.lower, COLUMNS), counts))})
