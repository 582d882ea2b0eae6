"""Links (attached programs) and the attach kinds that need more than a section name:
uprobes, perf events (software cpu-clock sampling, one event per online CPU), and network
interfaces (tcx and XDP links)."""
import contextlib
import ctypes
import errno as errno_mod
import os
import struct

from ._libbpf import TcHook, TcOpts, TracepointOpts, UprobeOpts, lib, syscall
from .errors import AttachError, NotSupportedError, PermissionDenied


class Link:
    def __init__(self, ptr, description, owned_fds=()):
        self._ptr = ptr
        self.description = description
        self._owned_fds = list(owned_fds)

    def destroy(self):
        if self._ptr:
            lib().bpf_link__destroy(self._ptr)
            self._ptr = None
        for fd in self._owned_fds:
            os.close(fd)
        self._owned_fds.clear()

    def __repr__(self):
        return f"Link({self.description!r}, attached={bool(self._ptr)})"


def attach_uprobe(prog, binary, symbol=None, offset=0, pid=-1, retprobe=False, cookie=0):
    """Attach to a user function by symbol (libbpf resolves it in the ELF) or by file offset.
    `cookie` is what bpf_get_attach_cookie() returns in the program: one program attached to
    many functions tells them apart by it."""
    opts = UprobeOpts(sz=ctypes.sizeof(UprobeOpts), retprobe=retprobe, bpf_cookie=cookie,
                      func_name=symbol.encode() if symbol else None)
    ptr = lib().bpf_program__attach_uprobe_opts(prog._ptr, pid, os.fsencode(binary), offset,
                                                ctypes.byref(opts))
    where = f"{binary}:{symbol or hex(offset)}"
    if not ptr:
        err = ctypes.get_errno()
        if err == errno_mod.ENOENT:
            raise AttachError(f"uprobe {where}: no such file or symbol")
        raise AttachError(f"uprobe {where}: {os.strerror(err or errno_mod.EINVAL)}")
    return Link(ptr, f"{prog.name} -> {'uretprobe' if retprobe else 'uprobe'} {where}")


def attach_tracepoint(prog, category, event, cookie=0):
    """Attach a classic tracepoint program to category:event, with a cookie (one generic
    program on many tracepoints tells them apart by it)."""
    opts = TracepointOpts(sz=ctypes.sizeof(TracepointOpts), bpf_cookie=cookie)
    ptr = lib().bpf_program__attach_tracepoint_opts(prog._ptr, category.encode(),
                                                    event.encode(), ctypes.byref(opts))
    if not ptr:
        err = ctypes.get_errno()
        raise AttachError(f"tracepoint {category}:{event}: "
                          f"{os.strerror(err or errno_mod.EINVAL)}")
    return Link(ptr, f"{prog.name} -> tracepoint {category}:{event}")


# --- network interfaces: links owned by a file descriptor, so a killed process leaves nothing

BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47  # enum bpf_attach_type (uapi, since Linux 6.6)
_ENOTSUPP = 524  # the kernel's internal "not supported", which bpf() can return


def attach_tcx(prog, ifindex, egress=False):
    """A tc program on one direction of interface ifindex (of the calling thread's network
    namespace) through a tcx link: it runs beside any other tc programs and qdiscs, and is
    detached when the link's fd closes, by us or by the process dying. libbpf 1.1 has no tcx
    call: bpf_link_create with the attach type does it."""
    kind = BPF_TCX_EGRESS if egress else BPF_TCX_INGRESS
    fd = lib().bpf_link_create(lib().bpf_program__fd(prog._ptr), ifindex, kind, None)
    where = f"{prog.name} -> tcx/{'egress' if egress else 'ingress'} ifindex {ifindex}"
    if fd < 0:
        err = -fd
        if err in (errno_mod.EINVAL, errno_mod.EOPNOTSUPP, _ENOTSUPP):
            raise NotSupportedError("tcx links", f"this kernel refused them ({os.strerror(err)})")
        raise AttachError(f"{where}: {os.strerror(err)}")
    return Link(None, where, owned_fds=[fd])


def attach_xdp(prog, ifindex):
    """An XDP program on interface ifindex through an XDP link (detached when it closes)."""
    ptr = lib().bpf_program__attach_xdp(prog._ptr, ifindex)
    where = f"{prog.name} -> xdp ifindex {ifindex}"
    if not ptr:
        err = ctypes.get_errno() or errno_mod.EINVAL
        if err == errno_mod.EBUSY:
            raise AttachError(f"{where}: another XDP program is attached to the interface")
        raise AttachError(f"{where}: {os.strerror(err)}")
    return Link(ptr, where)


BPF_TC_INGRESS, BPF_TC_EGRESS = 1, 2  # enum bpf_tc_attach_point


class TcClsact(Link):
    """tc programs as filters on a clsact qdisc, through netlink (libbpf's bpf_tc_*), for
    kernels without tcx links. destroy() removes our filters, and the qdisc only if we added
    it: an existing one stays. Unlike a link, this survives a killed process. enter() is
    the context (a network namespace) the netlink calls run in."""

    def __init__(self, ifindex, enter=contextlib.nullcontext):
        super().__init__(None, f"tc clsact filters, ifindex {ifindex}")
        self.ifindex, self._enter, self._filters = ifindex, enter, []
        with enter():
            err = lib().bpf_tc_hook_create(ctypes.byref(self._hook(BPF_TC_INGRESS)))
        if err and err != -errno_mod.EEXIST:
            raise AttachError(f"clsact qdisc on ifindex {ifindex}: {os.strerror(-err)}")
        self.added_qdisc = err == 0

    def _hook(self, point):
        return TcHook(sz=ctypes.sizeof(TcHook), ifindex=self.ifindex, attach_point=point)

    def attach(self, prog, egress=False):
        hook = self._hook(BPF_TC_EGRESS if egress else BPF_TC_INGRESS)
        opts = TcOpts(sz=ctypes.sizeof(TcOpts), prog_fd=lib().bpf_program__fd(prog._ptr))
        with self._enter():
            err = lib().bpf_tc_attach(ctypes.byref(hook), ctypes.byref(opts))
        if err:
            raise AttachError(f"{prog.name} -> tc filter, ifindex {self.ifindex}: "
                              f"{os.strerror(-err)}")
        self._filters.append((hook, opts.handle, opts.priority))

    def destroy(self):
        with self._enter():
            for hook, handle, priority in self._filters:
                opts = TcOpts(sz=ctypes.sizeof(TcOpts), handle=handle, priority=priority)
                lib().bpf_tc_detach(ctypes.byref(hook), ctypes.byref(opts))
            self._filters.clear()
            if self.added_qdisc:
                lib().bpf_tc_hook_destroy(
                    ctypes.byref(self._hook(BPF_TC_INGRESS | BPF_TC_EGRESS)))
                self.added_qdisc = False


# --- perf events ---

PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE = 0, 1
PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_SW_CPU_CLOCK = 0, 0
_PERF_ATTR_SIZE = 128
_FLAG_DISABLED, _FLAG_FREQ = 1 << 0, 1 << 10
_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "s390x": 331}


def perf_event_open(type_, config, cpu, pid=-1, freq=None, period=None):
    """perf_event_open(2) for a sampling event; returns the fd."""
    machine = os.uname().machine  # not platform.machine(): importing platform costs ~5 ms
    nr = _NR_PERF_EVENT_OPEN.get(machine)
    if nr is None:
        raise NotSupportedError("perf_event", f"unknown syscall number on {machine}")
    flags = _FLAG_FREQ if freq else 0
    attr = struct.pack("<IIQQQQQ", type_, _PERF_ATTR_SIZE, config, freq or period or 0,
                       0, 0, flags).ljust(_PERF_ATTR_SIZE, b"\0")
    buf = ctypes.create_string_buffer(attr, _PERF_ATTR_SIZE)
    fd, err = syscall(nr, buf, ctypes.c_int(pid), ctypes.c_int(cpu), ctypes.c_int(-1),
                      ctypes.c_ulong(0x8))  # PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        if err in (errno_mod.EACCES, errno_mod.EPERM):
            raise PermissionDenied("perf_event_open was refused")
        kind = "hardware PMU" if type_ == PERF_TYPE_HARDWARE else "perf event"
        raise NotSupportedError(kind, os.strerror(err))
    return fd


def online_cpus():
    with open("/sys/devices/system/cpu/online") as f:
        text = f.read().strip()
    cpus = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def attach_perf_event(prog, perf_fd):
    ptr = lib().bpf_program__attach_perf_event(prog._ptr, perf_fd)
    if not ptr:
        err = ctypes.get_errno()
        os.close(perf_fd)
        raise AttachError(f"{prog.name}: attach to perf event: {os.strerror(err or 22)}")
    # the link owns perf_fd now: libbpf closes it when the link is destroyed
    return Link(ptr, f"{prog.name} -> perf_event fd {perf_fd}")


def attach_cpu_clock(obj, prog_name, freq, pid=-1):
    """Sample at `freq` Hz on every online CPU with the software cpu-clock (no PMU needed)."""
    links = []
    for cpu in online_cpus():
        fd = perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, cpu, pid, freq=freq)
        links.append(obj.attach_perf_event(prog_name, fd))
    return links
