"""ioctllat: ioctl(2) latency as log2 histograms per command number (and per process with -P),
each command decoded into its _IOC direction, type, number and argument size."""
import platform

from ..errors import UsageError
from ..report.histogram import Log2Histogram, hist_dtype
from ..report.grouped import comm_of, emit_histograms
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, add_target_args,
                    interval_loop, open_spec, output_for, timestamp_line)

# A few commands worth naming; the rest are shown decoded. Values are the same on x86 and arm64.
KNOWN_CMDS = {
    0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF",
    0x540F: "TIOCGPGRP", 0x5410: "TIOCSPGRP", 0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ",
    0x541B: "FIONREAD", 0x5421: "FIONBIO", 0x5450: "FIONCLEX", 0x5451: "FIOCLEX",
    0x5452: "FIOASYNC", 0x80045430: "TIOCGPTN", 0x40045431: "TIOCSPTLCK",
    0x1260: "BLKGETSIZE", 0x1268: "BLKSSZGET", 0x80081272: "BLKGETSIZE64",
    0x80086601: "FS_IOC_GETFLAGS", 0x40086602: "FS_IOC_SETFLAGS", 0x40049409: "FICLONE",
    0x8912: "SIOCGIFCONF", 0x8913: "SIOCGIFFLAGS", 0x8933: "SIOCGIFINDEX",
}

# asm-generic/ioctl.h; powerpc, mips and sparc use 13 size bits and 3 direction bits.
_NARROW = platform.machine().startswith(("ppc", "mips", "sparc"))
_SIZE_BITS = 13 if _NARROW else 14
_DIRS = ({1: "NONE", 2: "R", 4: "W", 6: "RW"} if _NARROW else {0: "NONE", 1: "W", 2: "R", 3: "RW"})


def decode_cmd(cmd):
    """_IOC fields of cmd: {'cmd', 'name', 'dir', 'type', 'nr', 'size'}."""
    size_mask = (1 << _SIZE_BITS) - 1
    typ = (cmd >> 8) & 0xFF
    return {"cmd": cmd, "name": KNOWN_CMDS.get(cmd), "dir": _DIRS.get(cmd >> (16 + _SIZE_BITS), "?"),
            "type": typ, "nr": cmd & 0xFF, "size": (cmd >> 16) & size_mask}


def describe_cmd(cmd):
    d = decode_cmd(cmd)
    typ = chr(d["type"]) if 0x20 < d["type"] < 0x7F else hex(d["type"])
    name = f"{d['name']} " if d["name"] else ""
    return f"{cmd:#x} {name}(dir {d['dir']} type '{typ}' nr {d['nr']} size {d['size']})"


def parse_cmd(text):
    """-C accepts a number (0x541b, 21531) or a known name (FIONREAD)."""
    by_name = {v: k for k, v in KNOWN_CMDS.items()}
    if text.upper() in by_name:
        return by_name[text.upper()]
    try:
        value = int(text, 0)
    except ValueError:
        raise UsageError(f"invalid ioctl command {text!r}: a number or one of "
                         f"{', '.join(sorted(by_name))}") from None
    if not 0 <= value < 1 << 32:
        raise UsageError(f"invalid ioctl command {text!r}: must fit in 32 bits")
    return value


def value_dtype():
    import numpy as np
    return np.dtype([("h", hist_dtype()), ("errors", "<u8"), ("comm", "S16")])


class Ioctllat(Tool):
    name = "ioctllat"
    summary = "ioctl latency histogram per command and process"
    description = ("Summarize ioctl(2) latency as a histogram per command number (decoded into "
                   "_IOC dir/type/nr/size), from the syscalls:sys_enter/exit_ioctl tracepoints.")

    def add_arguments(self, p):
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
        add_target_args(p)
        p.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
        p.add_argument("-C", "--cmd", help="trace this command only (number or name, e.g. FIONREAD)")
        add_output_args(p)
        add_interval_args(p)

    def run(self, args):
        cmd = parse_cmd(args.cmd) if args.cmd is not None else None
        out = output_for(args)
        unit = "msecs" if args.milliseconds else "usecs"
        spec = open_spec("ioctllat", args, self.name)
        spec.set_globals(targ_per_process=args.pids, targ_ms=args.milliseconds)
        if cmd is not None:
            spec.set_globals(targ_filter_cmd=True, targ_cmd=cmd)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            hists = obj.map("hists", key=[("cmd", "<u4"), ("tgid", "<u4")], value=value_dtype)
            out.banner("Tracing ioctl latency... Hit Ctrl-C to end.")

            def tick():
                keys, values = hists.read_all(delete=True)
                out.text()
                timestamp_line(args, out)
                order = sorted(zip(keys.tolist(), values), key=lambda kv: (kv[0][1], kv[0][0]))
                emit_histograms(out, self.name, [self._entry(k, v, unit, args.pids)
                                                 for k, v in order])

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    @staticmethod
    def _entry(key, val, unit, per_process):
        cmd, tgid = key
        labels = {**decode_cmd(cmd), "errors": int(val["errors"])}
        title = f"cmd = {describe_cmd(cmd)}"
        if per_process:
            labels.update(pid=tgid, comm=comm_of(val["comm"]))
            title += f"  pid = {tgid} {labels['comm']}"
        if labels["errors"]:
            title += f"  errors = {labels['errors']}"
        return title, Log2Histogram.from_record(val["h"], unit, **labels)
