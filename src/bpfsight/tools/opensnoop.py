"""opensnoop: trace open()s with path, flags and result (BCC's opensnoop)."""
import os

from ..errors import UsageError
from ..fileio import drop_absent_syscalls
from ..tool import (Tool, add_output_args, add_target_args, open_spec, output_for, positive_int,
                   select_hooks, snoop)
from .execsnoop import _user_id


def event_dtype():
    """struct open_event (bpf/opensnoop.bpf.c)."""
    import numpy as np
    return np.dtype([("ts_ns", "<u8"), ("pid", "<u4"), ("tid", "<u4"), ("uid", "<u4"),
                     ("ret", "<i4"), ("flags", "<u4"), ("mode", "<u4"), ("comm", "S16"),
                     ("path", "S256")])


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

    def add_arguments(self, p):
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
        p.add_argument("-x", "--failed", action="store_true", help="only show failed opens")
        add_target_args(p)
        p.add_argument("-t", "--tid", type=positive_int("TID"), help="trace this TID only")
        p.add_argument("-u", "--uid", type=_user_id, help="trace this UID only")
        p.add_argument("-d", "--duration", type=positive_int("duration"),
                       help="total duration of trace in seconds")
        p.add_argument("-n", "--name", help="only print process names containing this name")
        p.add_argument("-e", "--extended_fields", action="store_true",
                       help="show extended fields")
        p.add_argument("-f", "--flag_filter", action="append",
                       help="filter on flags argument (e.g., O_WRONLY)")
        add_output_args(p)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("opensnoop", args, self.name)
        spec.set_globals(targ_failed=args.failed, targ_flags=flag_mask(args.flag_filter),
                         wakeup_bytes=64 * 1024)
        if args.tid:
            spec.set_global("targ_tid", args.tid)
        if args.uid is not None:
            spec.set_global("targ_uid", args.uid)
        drop_absent_syscalls(spec)
        select_hooks(spec, self.name)
        first_ts = {}  # TIME(s) counts from the first event shown, as in BCC

        def show(ring):
            for e in map(decode, ring.read_array(event_dtype())):
                if args.name and args.name not in e["comm"]:
                    continue
                first_ts.setdefault("ns", e["ts_ns"])
                out.record({"tool": self.name, **e})
                out.text(self.row(args, e, (e["ts_ns"] - first_ts["ns"]) / 1e9))

        return snoop(spec, out, self.header(args), show, duration=args.duration)

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
