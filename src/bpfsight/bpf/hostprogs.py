"""Every BPF program loaded on the host (any process's, not only ours), for `bpfsight progs`:
ids, types, names, run statistics (see info.RunTimeStats) and attach points from the BPF links.
Link info layouts are the uapi ones (include/uapi/linux/bpf.h)."""
import ctypes
import errno as errno_mod
import os
import struct
from dataclasses import dataclass

from ._libbpf import check_int, lib
from .info import prog_info_by_id

PROG_TYPES = {
    0: "unspec", 1: "socket_filter", 2: "kprobe", 3: "sched_cls", 4: "sched_act",
    5: "tracepoint", 6: "xdp", 7: "perf_event", 8: "cgroup_skb", 9: "cgroup_sock",
    10: "lwt_in", 11: "lwt_out", 12: "lwt_xmit", 13: "sock_ops", 14: "sk_skb",
    15: "cgroup_device", 16: "sk_msg", 17: "raw_tracepoint", 18: "cgroup_sock_addr",
    19: "lwt_seg6local", 20: "lirc_mode2", 21: "sk_reuseport", 22: "flow_dissector",
    23: "cgroup_sysctl", 24: "raw_tracepoint_writable", 25: "cgroup_sockopt", 26: "tracing",
    27: "struct_ops", 28: "ext", 29: "lsm", 30: "sk_lookup", 31: "syscall", 32: "netfilter",
}
# enum bpf_attach_type values of the tracing kinds (prog_info carries no attach type)
_TRACING_KINDS = {23: "tp_btf", 24: "fentry", 25: "fexit", 26: "fmod_ret", 27: "lsm"}
_PERF_EVENT_KINDS = {1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe", 5: "tracepoint",
                     6: "perf_event"}
_LINK_RAW_TP, _LINK_TRACING, _LINK_PERF_EVENT = 1, 2, 7


@dataclass
class ProgInfo:
    id: int
    type: str
    name: str
    tag: str
    run_cnt: int
    run_time_ns: int
    recursion_misses: int
    load_time_ns: int  # since boot
    attach: list       # where it is attached, e.g. ["tp_btf sched_switch"]; [] if unknown


def _ids(next_fn):
    """Every id the kernel hands out through bpf_*_get_next_id, in order."""
    cur, nxt = 0, ctypes.c_uint32()
    while True:
        ret = next_fn(cur, ctypes.byref(nxt))
        if ret == -errno_mod.ENOENT:
            return
        check_int(ret, "walk BPF object ids")
        cur = nxt.value
        yield cur


def _info(fd, buf):
    size = ctypes.c_uint32(ctypes.sizeof(buf))
    check_int(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(buf), ctypes.byref(size)),
              "read BPF link info")
    return buf


def programs():
    """ProgInfo of every program loaded on the host (ones unloaded meanwhile are skipped)."""
    points = attach_points()
    found = []
    for prog_id in _ids(lib().bpf_prog_get_next_id):
        try:
            i = prog_info_by_id(prog_id)
        except OSError:
            continue  # unloaded between the walk and the open
        ptype = PROG_TYPES.get(i.type, str(i.type))
        found.append(ProgInfo(i.id, ptype, i.name.decode(errors="replace"), bytes(i.tag).hex(),
                              i.run_cnt, i.run_time_ns, i.recursion_misses, i.load_time,
                              _attach_of(ptype, i.attach_btf_id, points.get(i.id, []))))
    return found


def _attach_of(ptype, attach_btf_id, links):
    """A tp_btf program is attached through a raw tracepoint link: name it for what it is.
    Without a link (attached the old way, or not at all) a tracing program still names its
    BTF target."""
    if ptype == "tracing":
        links = [t.replace("raw_tp ", "tp_btf ", 1) for t in links]
        if not links and attach_btf_id:
            links = [f"target {btf_name(attach_btf_id)}"]
    return links


# --- links: where each program is attached ---

def _link_info(fd):
    """(type, prog_id, attach text) of the link behind fd. Names are copied by the kernel into
    buffers we lend it through pointers in the info struct."""
    name = ctypes.create_string_buffer(512)
    raw = ctypes.create_string_buffer(256)
    kind = _read_link(fd, raw)
    ltype, _, prog_id = struct.unpack_from("<III", raw.raw)
    if ltype == _LINK_RAW_TP:
        struct.pack_into("<QI", raw, 16, ctypes.addressof(name), len(name))
        _read_link(fd, raw, keep=True)
        return prog_id, f"raw_tp {name.value.decode(errors='replace')}"
    if ltype == _LINK_TRACING:
        attach_type, _, btf_id = struct.unpack_from("<III", raw.raw, 16)
        return prog_id, f"{_TRACING_KINDS.get(attach_type, 'tracing')} {btf_name(btf_id)}"
    if ltype == _LINK_PERF_EVENT:
        struct.pack_into("<QI", raw, 24, ctypes.addressof(name), len(name))
        _read_link(fd, raw, keep=True)
        ptype = struct.unpack_from("<I", raw.raw, 16)[0]
        what = _PERF_EVENT_KINDS.get(ptype, "perf_event")
        text = name.value.decode(errors="replace")
        if ptype in (1, 2, 3, 4):
            offset = struct.unpack_from("<I", raw.raw, 36)[0]
            text = f"{text}+{offset:#x}" if text else f"{offset:#x}"
        elif ptype == 6:
            text = _perf_event_name(*struct.unpack_from("<QI", raw.raw, 24))
        return prog_id, f"{what} {text}".strip()
    return prog_id, kind


_PERF_EVENTS = {0: ("hardware", ["cycles", "instructions", "cache-references", "cache-misses",
                                  "branches", "branch-misses", "bus-cycles"]),
                1: ("software", ["cpu-clock", "task-clock", "page-faults", "context-switches",
                                 "cpu-migrations", "minor-faults", "major-faults"])}


def _perf_event_name(config, etype):
    kind, names = _PERF_EVENTS.get(etype, (f"type{etype}", []))
    return f"{kind}:{names[config] if config < len(names) else config}"


def _read_link(fd, raw, keep=False):
    if not keep:
        ctypes.memset(raw, 0, len(raw))
    _info(fd, raw)
    return f"link type {struct.unpack_from('<I', raw.raw)[0]}"


def attach_points():
    """{prog_id: [attach text, ...]} from every BPF link on the host."""
    points = {}
    for link_id in _ids(lib().bpf_link_get_next_id):
        fd = lib().bpf_link_get_fd_by_id(link_id)
        if fd < 0:
            continue
        try:
            prog_id, text = _link_info(fd)
        except OSError:
            continue
        finally:
            os.close(fd)
        points.setdefault(prog_id, []).append(text)
    return {pid: _counted(texts) for pid, texts in points.items()}


def _counted(texts):
    """One entry per distinct attach point; "x4" when attached that many times (per CPU)."""
    return [t if texts.count(t) == 1 else f"{t} x{texts.count(t)}" for t in dict.fromkeys(texts)]


def btf_name(type_id):
    """Name of a vmlinux BTF type; tp_btf targets lose their btf_trace_ prefix."""
    from .features import _vmlinux_btf
    btf = _vmlinux_btf()
    t = lib().btf__type_by_id(btf, type_id) if btf and type_id else None
    if not t:
        return f"btf_id {type_id}"
    name = lib().btf__name_by_offset(btf, t.contents.name_off).decode(errors="replace")
    return name.removeprefix("btf_trace_") or f"btf_id {type_id}"
