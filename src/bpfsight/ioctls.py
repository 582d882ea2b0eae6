"""ioctl(2) command numbers: the _IOC fields a number encodes, names for a few common ones,
and the -C argument (ioctllat, gpulat)."""
import platform

from .errors import UsageError

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
