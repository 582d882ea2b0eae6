"""fileslower: file reads, writes and fsyncs slower than a threshold (BCC's fileslower)."""
import argparse
import time

from ..errors import UsageError
from ..fileio import drop_absent_syscalls, full_path
from ..tool import Option, Tool, flag

HEADER = "%-8s %-14s %-6s %1s %-7s %7s %s" % (
    "TIME(s)", "COMM", "TID", "D", "BYTES", "LAT(ms)", "FILENAME")


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

    streams = target = True
    options = (
        flag("-a", "--all-files", help="include non-regular file types (sockets, FIFOs, etc)"),
        Option("min_ms", nargs="?", type=min_ms_arg, default=10,
               help="minimum I/O duration to trace, in ms (default 10)"))

    def magic(self, opts):
        return 0  # every file system

    def banner_for(self, opts):
        return f"Tracing sync read/writes slower than {opts.min_ms} ms"

    def header_for(self, opts):
        return HEADER

    def configure(self, spec, opts):
        spec.set_globals(min_ns=opts.min_ms * 1000000, targ_all_files=opts.all_files,
                         targ_magic=self.magic(opts),
                         # slow I/O is rare: show each at once, unless everything is traced
                         wakeup_bytes=1 if opts.min_ms else 64 * 1024)
        drop_absent_syscalls(spec)
        self._start = time.monotonic()

    def decode(self, batch, dtype, opts):
        """Each slow call, with time_s since the start (when it was read)."""
        for e in map(decode, batch):
            yield {**e, "time_s": round(time.monotonic() - self._start, 3)}

    def render(self, records, opts, out):
        for e in records:
            out.text("%-8.3f %-14.14s %-6s %1s %-7s %7.2f %s" % (
                e["time_s"], e["comm"], e["tid"], e["op"], e["bytes"], e["lat_ms"], e["file"]))


class Fsslower(Fileslower):
    """fileslower on one file-system type (BCC's ext4slower, xfsslower, btrfsslower)."""
    name = "fsslower"
    object_name = "fileslower"
    summary = "file-system reads/writes/fsyncs slower than a threshold (ext4slower, ...)"
    fs = None  # a fixed type: ext4slower

    @property
    def description(self):
        return (super().description + "\n\nOnly files on one file-system type (-t, by its "
                "superblock magic; ext4slower: ext4). BCC's ext4slower also shows opens; "
                "fsdist times them.")

    @property
    def options(self):
        from .fsdist import MAGIC
        return (Option("-t", "--type", choices=sorted(MAGIC), default=self.fs or "ext4",
                       help=f"file-system type (default {self.fs or 'ext4'})"),) + \
            Fileslower.options

    def magic(self, opts):
        from .fsdist import MAGIC
        if self.fs and opts.type != self.fs:
            raise UsageError(f"{self.name} traces {self.fs}: use fsslower -t {opts.type}")
        return MAGIC[opts.type]

    def banner_for(self, opts):
        return f"Tracing {opts.type} reads/writes/fsyncs slower than {opts.min_ms} ms"


class Ext4slower(Fsslower):
    name, fs = "ext4slower", "ext4"
    summary = "ext4 reads/writes/fsyncs slower than a threshold"
