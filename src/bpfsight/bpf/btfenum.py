"""Names of a kernel enum's values, read from the running kernel's BTF: tools that receive enum
values from the kernel (e.g. enum skb_drop_reason) print the names this kernel uses, whatever
its version added or renumbered."""
import ctypes
from functools import lru_cache

from . import features
from ._libbpf import BtfType, lib

BTF_KIND_ENUM, BTF_KIND_ENUM64 = 6, 19


class _BtfEnum(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("val", ctypes.c_int32)]


class _BtfEnum64(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("lo32", ctypes.c_uint32), ("hi32", ctypes.c_uint32)]


@lru_cache(maxsize=None)
def enum_values(enum_name):
    """{value: NAME} of `enum enum_name` in vmlinux BTF; {} when the kernel has no such enum."""
    btf = features._vmlinux_btf()
    if not btf:
        return {}
    for kind, entry in ((BTF_KIND_ENUM, _BtfEnum), (BTF_KIND_ENUM64, _BtfEnum64)):
        type_id = lib().btf__find_by_name_kind(btf, enum_name.encode(), kind)
        if type_id > 0:
            return _read(btf, type_id, entry)
    return {}


def _read(btf, type_id, entry):
    t = lib().btf__type_by_id(btf, type_id)
    count = t.contents.info & 0xFFFF
    members = ctypes.cast(ctypes.addressof(t.contents) + ctypes.sizeof(BtfType),
                          ctypes.POINTER(entry * count)).contents
    out = {}
    for m in members:
        value = m.val if entry is _BtfEnum else (m.hi32 << 32) | m.lo32
        out[value] = lib().btf__name_by_offset(btf, m.name_off).decode()
    return out


def short_names(enum_name, prefix):
    """enum_values with a common prefix cut: SKB_DROP_REASON_NO_SOCKET -> NO_SOCKET."""
    return {v: n[len(prefix):] if n.startswith(prefix) else n
            for v, n in enum_values(enum_name).items()}
