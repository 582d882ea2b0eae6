"""fileslower: file reads, writes and fsyncs slower than a threshold (BCC's fileslower)."""
import argparse
import time

from ..fileio import drop_absent_syscalls, full_path
from ..tool import (Tool, add_output_args, add_target_args, open_spec, output_for, select_hooks,
                   snoop)

HEADER = "%-8s %-14s %-6s %1s %-7s %7s %s" % (
    "TIME(s)", "COMM", "TID", "D", "BYTES", "LAT(ms)", "FILENAME")


def event_dtype():
    """struct slow_event (bpf/fileslower.bpf.c)."""
    import numpy as np
    return np.dtype([("delta_ns", "<u8"), ("ret", "<i8"), ("ino", "<u8"), ("dev", "<u4"),
                     ("mode", "<u4"), ("pid", "<u4"), ("tid", "<u4"), ("fd", "<i4"),
                     ("op", "<u4"), ("comm", "S16"), ("name", "S64")])


def min_ms_arg(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid min_ms {text!r}: expected a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid min_ms {text!r}: must not be negative")
    return value


def decode(e):
    """One slow operation as a plain dict, its file named while the fd is likely still open."""
    name = e["name"].decode(errors="replace")
    return {"pid": int(e["pid"]), "tid": int(e["tid"]), "comm": e["comm"].decode(errors="replace"),
            "op": chr(int(e["op"])), "bytes": int(e["ret"]), "lat_ms": int(e["delta_ns"]) / 1e6,
            "name": name,
            "file": full_path(int(e["pid"]), int(e["fd"]), int(e["dev"]), int(e["ino"]), name)}


class Fileslower(Tool):
    name = "fileslower"
    summary = "trace file reads/writes/fsyncs slower than a threshold"
    description = (
        "Trace file reads, writes and fsyncs slower than min_ms (BCC's fileslower).\n\n"
        "Times the read/write syscalls (read, pread64, readv, preadv(2) and the write forms)\n"
        "and fsync/fdatasync from enter to exit: syscall time, not the VFS time BCC measures\n"
        "with kprobes (the difference is the syscall's own overhead, microseconds). D is R\n"
        "(read), W (write) or S (fsync/fdatasync); BYTES is what the call returned (-errno on\n"
        "failure). Only regular files unless -a, which adds pipes, FIFOs and sockets (whose\n"
        "reads block until data arrives). FILENAME is the full path while the process still has\n"
        "the file open, else the file's own name.")

    def add_arguments(self, p):
        add_target_args(p)
        p.add_argument("-a", "--all-files", action="store_true",
                       help="include non-regular file types (sockets, FIFOs, etc)")
        add_output_args(p)
        p.add_argument("min_ms", nargs="?", type=min_ms_arg, default=10,
                       help="minimum I/O duration to trace, in ms (default 10)")

    def run(self, args):
        out = output_for(args)
        spec = open_spec("fileslower", args, self.name)
        spec.set_globals(min_ns=args.min_ms * 1000000, targ_all_files=args.all_files,
                         # slow I/O is rare: show each at once, unless everything is traced
                         wakeup_bytes=1 if args.min_ms else 64 * 1024)
        drop_absent_syscalls(spec)
        select_hooks(spec, self.name)
        start = time.monotonic()

        def show(ring):
            for e in map(decode, ring.read_array(event_dtype())):
                out.record({"tool": self.name, **e})
                out.text("%-8.3f %-14.14s %-6s %1s %-7s %7.2f %s" % (
                    time.monotonic() - start, e["comm"], e["tid"], e["op"], e["bytes"],
                    e["lat_ms"], e["file"]))

        return snoop(spec, out, f"Tracing sync read/writes slower than {args.min_ms} ms", show,
                     header=HEADER)
