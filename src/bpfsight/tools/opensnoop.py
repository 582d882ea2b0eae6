"""opensnoop: trace open()s with path, flags and result (BCC's opensnoop)."""
import os

from ..errors import UsageError
from ..fileio import drop_absent_syscalls
from ..target import uid_arg
from ..tool import DURATION, TIMESTAMP, Option, Tool, flag, positive_int


def flag_mask(names):
    """-f O_WRONLY -f O_RDWR -> the bit mask the kernel side tests."""
    mask = 0
    for name in names or []:
        if not name.startswith("O_") or not isinstance(getattr(os, name, None), int):
            raise UsageError(f"bad flag {name!r}: expected an open flag such as O_WRONLY")
        mask |= getattr(os, name)
    return mask


def decode(e):
    ret = int(e["ret"])
    return {"ts_ns": int(e["ts_ns"]), "pid": int(e["pid"]), "tid": int(e["tid"]),
            "uid": int(e["uid"]), "comm": e["comm"].decode(errors="replace"),
            "fd": ret if ret >= 0 else -1, "err": 0 if ret >= 0 else -ret,
            "flags": int(e["flags"]), "mode": int(e["mode"]),
            "path": e["path"].decode(errors="replace")}


def mode_text(e):
    """MODE only means something when the open can create a file (see open(2))."""
    creates = e["flags"] & os.O_CREAT or (e["flags"] & os.O_TMPFILE) == os.O_TMPFILE
    return "%04o" % e["mode"] if creates or e["mode"] else "n/a "


class Opensnoop(Tool):
    name = "opensnoop"
    summary = "trace open() syscalls with path, flags and errors"
    description = (
        "Trace open() syscalls: open, openat, openat2 and creat (BCC's opensnoop).\n\n"
        "Opens submitted through io_uring (IORING_OP_OPENAT/OPENAT2) never pass through\n"
        "these syscalls and are invisible to this tool. The path is shown as the caller\n"
        "passed it (relative paths stay relative).")

    streams = target = True
    options = (
        TIMESTAMP,
        flag("-U", "--print-uid", help="print UID column"),
        flag("-x", "--failed", help="only show failed opens"),
        Option("-t", "--tid", type=positive_int("TID"), help="trace this TID only"),
        Option("-u", "--uid", type=uid_arg, help="trace this UID only"),
        DURATION,
        Option("-n", "--name", help="only print process names containing this name"),
        flag("-e", "--extended_fields", help="show extended fields"),
        Option("-f", "--flag_filter", action="append",
               help="filter on flags argument (e.g., O_WRONLY)"))

    def banner_for(self, opts):
        return self.header(opts)

    def configure(self, spec, opts):
        spec.set_globals(targ_failed=opts.failed, targ_flags=flag_mask(opts.flag_filter),
                         wakeup_bytes=64 * 1024)
        if opts.tid:
            spec.set_global("targ_tid", opts.tid)
        if opts.uid is not None:
            spec.set_global("targ_uid", opts.uid)
        drop_absent_syscalls(spec)
        self._first_ns = None  # TIME(s) counts from the first event shown, as in BCC

    def decode(self, batch, dtype, opts):
        for e in map(decode, batch):
            if opts.name and opts.name not in e["comm"]:
                continue
            if self._first_ns is None:
                self._first_ns = e["ts_ns"]
            yield e

    def render(self, records, opts, out):
        for e in records:
            out.text(self.row(opts, e, (e["ts_ns"] - self._first_ns) / 1e9))

    @staticmethod
    def header(args):
        line = "%-14s" % "TIME(s)" if args.timestamp else ""
        line += "%-6s" % "UID" if args.print_uid else ""
        line += "%-6s %-16s %4s %3s " % ("TID" if args.tid else "PID", "COMM", "FD", "ERR")
        line += "%-8s %-4s " % ("FLAGS", "MODE") if args.extended_fields else ""
        return line + "PATH"

    @staticmethod
    def row(args, e, seconds):
        line = "%-14.9f" % seconds if args.timestamp else ""
        line += "%-6d" % e["uid"] if args.print_uid else ""
        line += "%-6d %-16s %4d %3d " % (e["tid"] if args.tid else e["pid"], e["comm"],
                                         e["fd"], e["err"])
        line += "%08o %s " % (e["flags"], mode_text(e)) if args.extended_fields else ""
        return line + e["path"]
