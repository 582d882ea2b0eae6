"""Feature probes: each tries the real thing (a tiny program load, an attach, a perf event) and
answers yes / no / could not tell, with the reason. Results are cached per process."""
import ctypes
import functools
import marshal
import os
from collections import namedtuple

from ._libbpf import lib

TRACEFS = "/sys/kernel/tracing"
PROG_TYPES = {"kprobe": 2, "tracepoint": 5, "perf_event": 7, "raw_tracepoint": 17,
              "tracing": 26}


class Feature(namedtuple("Feature", "name available reason")):
    """available is True, False, or None (could not tell)."""

    def __bool__(self):
        return self.available is True


def tracepoint_exists(category, name):
    return os.path.isdir(os.path.join(TRACEFS, "events", category, name))


@functools.lru_cache(maxsize=None)
def _vmlinux_btf():
    ptr = lib().btf__load_vmlinux_btf()
    return ptr or None


def release_vmlinux_btf():
    """Free the kernel's BTF as parsed for the probes (~11 MB of C heap for Linux 6.18's
    5.5 MB): a daemon calls this once it has started; a later probe parses it again."""
    if _vmlinux_btf.cache_info().currsize:
        btf = _vmlinux_btf()
        _vmlinux_btf.cache_clear()
        if btf:
            lib().btf__free(btf)


def btf_tracepoint_exists(name):
    """A tp_btf/raw_tp hook exists when vmlinux BTF has its btf_trace_<name> typedef."""
    return _boot_cached(f"btf_tp:{name}", lambda: bool(_vmlinux_btf()) and lib().btf__find_by_name_kind(
        _vmlinux_btf(), f"btf_trace_{name}".encode(), 8) > 0)


def btf_iter_exists(target):
    """An iterator target (SEC("iter/task"): "task") exists when vmlinux BTF has its
    bpf_iter_<target> function."""
    return _boot_cached(f"btf_iter:{target}", lambda: bool(_vmlinux_btf()) and lib().btf__find_by_name_kind(
        _vmlinux_btf(), f"bpf_iter_{target}".encode(), 12) > 0)


def btf_tracepoint_nargs(name):
    """How many arguments tracepoint `name` passes to tp_btf/raw_tp programs (kernels add
    arguments over time, e.g. tcp_retransmit_skb's err in 6.10); None when unknown."""
    def count():
        btf = _vmlinux_btf()
        tid = lib().btf__find_by_name_kind(btf, f"btf_trace_{name}".encode(), 8) if btf else -1
        if tid <= 0:
            return None
        ptr = lib().btf__type_by_id(btf, lib().btf__type_by_id(btf, tid).contents.size_or_type)
        proto = lib().btf__type_by_id(btf, ptr.contents.size_or_type).contents
        return (proto.info & 0xFFFF) - 1  # without the leading void *ctx
    return _boot_cached(f"btf_tp_nargs:{name}", count)


# --- answers cached for this boot: parsing vmlinux BTF and trial loads cost ~15 ms a start ---

# marshal, not json: built into the interpreter, so reading it imports nothing at start-up
BOOT_CACHE = "/run/bpfsight/features.marshal"
_boot = None


def _boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _boot_cached(key, compute):
    """compute() once per boot; the kernel cannot gain or lose a hook or a feature until reboot."""
    global _boot
    if _boot is None:
        _boot = {}
        try:
            with open(BOOT_CACHE, "rb") as f:
                data = marshal.load(f)
            if data.get("boot_id") == _boot_id():
                _boot = data.get("answers", {})
        except (OSError, ValueError, EOFError, TypeError, AttributeError):
            pass  # absent, or written by another Python: recomputed
    if key in _boot:
        return _boot[key]
    value = compute()
    _boot[key] = value
    try:
        os.makedirs(os.path.dirname(BOOT_CACHE), exist_ok=True)
        tmp = f"{BOOT_CACHE}.{os.getpid()}"
        with open(tmp, "wb") as f:
            marshal.dump({"boot_id": _boot_id(), "answers": _boot}, f)
        os.replace(tmp, BOOT_CACHE)
    except OSError:
        pass  # not cached: only slower
    return value


# --- a minimal program: r0 = 0; exit ---
_RET0 = bytes([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])


class _ProgLoadOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("attempts", ctypes.c_int),
                ("expected_attach_type", ctypes.c_int), ("prog_btf_fd", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_ifindex", ctypes.c_uint32),
                ("kern_version", ctypes.c_uint32), ("attach_btf_id", ctypes.c_uint32),
                ("attach_prog_fd", ctypes.c_uint32), ("attach_btf_obj_fd", ctypes.c_uint32),
                ("fd_array", ctypes.c_void_p), ("func_info", ctypes.c_void_p),
                ("func_info_cnt", ctypes.c_uint32), ("func_info_rec_size", ctypes.c_uint32),
                ("line_info", ctypes.c_void_p), ("line_info_cnt", ctypes.c_uint32),
                ("line_info_rec_size", ctypes.c_uint32), ("log_level", ctypes.c_uint32),
                ("log_size", ctypes.c_uint32), ("log_buf", ctypes.c_char_p),
                ("log_true_size", ctypes.c_uint32)]


def load_trivial(prog_type, **opts):
    """Load `return 0` as prog_type; returns the fd (caller closes) or raises OSError."""
    o = _ProgLoadOpts(sz=ctypes.sizeof(_ProgLoadOpts), **opts)
    insns = ctypes.create_string_buffer(_RET0, len(_RET0))
    fd = lib().bpf_prog_load(prog_type, b"bpfsight_probe", b"GPL", insns, 2, ctypes.byref(o))
    if fd < 0:
        raise OSError(-fd, os.strerror(-fd))
    return fd


def _try(fn):
    try:
        return fn()
    except OSError as exc:
        return exc


@functools.lru_cache(maxsize=None)
def probe(name, fresh=False):
    """The Feature called `name` (see FEATURES). Definite answers are cached for the boot;
    fresh=True (doctor) probes again."""
    if fresh:
        return FEATURES[name]()
    return Feature(*_boot_cached(f"feature:{name}", lambda: list(FEATURES[name]())))


def _btf():
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return Feature("btf", False, "/sys/kernel/btf/vmlinux is missing")
    return Feature("btf", bool(_vmlinux_btf()), "/sys/kernel/btf/vmlinux parses"
                   if _vmlinux_btf() else "vmlinux BTF does not parse")


def _jit():
    try:
        with open("/proc/sys/net/core/bpf_jit_enable") as f:
            value = f.read().strip()
    except OSError as exc:
        return Feature("jit", None, f"cannot read bpf_jit_enable: {exc.strerror}")
    return Feature("jit", value != "0", f"net.core.bpf_jit_enable = {value}")


def _prog_type(feature, type_name, why):
    def check():
        res = _try(lambda: load_trivial(PROG_TYPES[type_name]))
        if isinstance(res, OSError):
            return Feature(feature, False, f"{type_name} program load failed: {res.strerror}")
        os.close(res)
        return Feature(feature, True, why)
    return check


def _tracepoint():
    ok = tracepoint_exists("sched", "sched_switch")
    base = _prog_type("tracepoint", "tracepoint", "program loads; tracefs has sched:sched_switch")()
    if not ok:
        return Feature("tracepoint", False, "tracefs has no sched:sched_switch")
    return base


def _tp_btf():
    """A BTF-enabled tracepoint program loads only where the kernel can attach it."""
    btf = _vmlinux_btf()
    if not btf:
        return Feature("tp_btf", False, "no vmlinux BTF")
    type_id = lib().btf__find_by_name_kind(btf, b"btf_trace_sched_switch", 8)
    if type_id <= 0:
        return Feature("tp_btf", False, "vmlinux BTF has no btf_trace_sched_switch")
    res = _try(lambda: load_trivial(PROG_TYPES["tracing"], expected_attach_type=23,  # BPF_TRACE_RAW_TP
                                    attach_btf_id=type_id))
    if isinstance(res, OSError):
        return Feature("tp_btf", False, f"tp_btf load failed: {res.strerror}")
    os.close(res)
    return Feature("tp_btf", True, "tp_btf program for sched_switch loads")


def _fentry():
    btf = _vmlinux_btf()
    if not btf:
        return Feature("fentry", False, "no vmlinux BTF")
    type_id = lib().btf__find_by_name_kind(btf, b"do_nanosleep", 12)  # BTF_KIND_FUNC
    if type_id <= 0:
        return Feature("fentry", None, "vmlinux BTF has no do_nanosleep to try")
    res = _try(lambda: load_trivial(PROG_TYPES["tracing"], expected_attach_type=24,  # TRACE_FENTRY
                                    attach_btf_id=type_id))
    if isinstance(res, OSError):
        return Feature("fentry", False, f"fentry load failed: {res.strerror} "
                       "(no BPF trampoline on this kernel)")
    os.close(res)
    return Feature("fentry", True, "fentry program for do_nanosleep loads")


def _raw_tp():
    res = _try(lambda: load_trivial(PROG_TYPES["raw_tracepoint"]))
    if isinstance(res, OSError):
        return Feature("raw_tp", False, f"raw_tracepoint load failed: {res.strerror}")
    try:
        link = lib().bpf_raw_tracepoint_open(b"sched_switch", res)
        if link < 0:
            return Feature("raw_tp", False, f"raw_tracepoint_open failed: {os.strerror(-link)}")
        os.close(link)
        return Feature("raw_tp", True, "raw tracepoint sched_switch attaches")
    finally:
        os.close(res)


def _pmu_type(name):
    try:
        with open(f"/sys/bus/event_source/devices/{name}/type") as f:
            return int(f.read())
    except OSError:
        return None


def _kprobe():
    if _pmu_type("kprobe") is None and not os.path.exists(os.path.join(TRACEFS, "kprobe_events")):
        return Feature("kprobe", False, "no kprobe PMU and no kprobe_events (CONFIG_KPROBES off)")
    return _attach_probe("kprobe", "kprobe", 2, b"do_nanosleep")


def _attach_probe(feature, pmu, prog_type, target):
    """Attach a trivial kprobe/uprobe through the perf_event interface."""
    from .links import _NR_PERF_EVENT_OPEN
    import platform
    import struct
    from ._libbpf import syscall
    pmu_type = _pmu_type(pmu)
    if pmu_type is None:
        return Feature(feature, False, f"no {pmu} PMU")
    name = ctypes.create_string_buffer(target)
    # perf_event_attr: type, size, config, ..., config1 = pointer to the name, config2 = offset
    attr = bytearray(128)
    struct.pack_into("<II", attr, 0, pmu_type, 128)
    struct.pack_into("<Q", attr, 56, ctypes.addressof(name))
    buf = ctypes.create_string_buffer(bytes(attr), 128)
    pid = os.getpid() if pmu == "uprobe" else -1
    cpu = -1 if pmu == "uprobe" else 0
    fd, err = syscall(_NR_PERF_EVENT_OPEN[platform.machine()], buf, ctypes.c_int(pid),
                      ctypes.c_int(cpu), ctypes.c_int(-1), ctypes.c_ulong(8))
    if fd < 0:
        return Feature(feature, False, f"perf_event_open({pmu}) failed: {os.strerror(err)}")
    os.close(fd)
    return Feature(feature, True, f"{pmu} on {target.decode()} opens")


def _uprobe():
    # our own interpreter binary: always present, and a probe at offset 0 is never hit
    return _attach_probe("uprobe", "uprobe", 2, os.path.realpath("/proc/self/exe").encode())


def _perf_cpu_clock():
    from .links import PERF_COUNT_SW_CPU_CLOCK, PERF_TYPE_SOFTWARE, perf_event_open
    from .errors import BPFError
    try:
        fd = perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, 0, freq=49)
    except BPFError as exc:
        return Feature("perf_cpu_clock", False, str(exc))
    try:
        prog = load_trivial(PROG_TYPES["perf_event"])
    except OSError as exc:
        os.close(fd)
        return Feature("perf_cpu_clock", False, f"perf_event program load: {exc.strerror}")
    import fcntl
    try:
        fcntl.ioctl(fd, 0x40042408, prog)  # PERF_EVENT_IOC_SET_BPF
        return Feature("perf_cpu_clock", True, "software cpu-clock event takes a BPF program")
    except OSError as exc:
        return Feature("perf_cpu_clock", False, f"PERF_EVENT_IOC_SET_BPF: {exc.strerror}")
    finally:
        os.close(prog)
        os.close(fd)


def _hw_pmu():
    from .links import PERF_COUNT_HW_CPU_CYCLES, PERF_TYPE_HARDWARE, perf_event_open
    from .errors import BPFError
    try:
        fd = perf_event_open(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, 0, period=1000000)
    except BPFError as exc:
        return Feature("hw_pmu", False, f"cpu-cycles event: {exc}")
    os.close(fd)
    return Feature("hw_pmu", True, "cpu-cycles event opens")


def _ringbuf():
    from .maps import Map
    try:
        Map.create(27, 0, 0, 4096, "probe_rb").release()
        return Feature("ringbuf", True, "BPF_MAP_TYPE_RINGBUF map created")
    except OSError as exc:
        return Feature("ringbuf", False, f"ringbuf map create: {exc.strerror}")


def _map_batch():
    from .maps import Map
    try:
        m = Map.create(1, 4, 8, 16, "probe_batch")
    except OSError as exc:
        return Feature("map_batch", None, f"hash map create: {exc.strerror}")
    try:
        m[1] = bytes(8)
        m._batch(delete=False)
        return Feature("map_batch", True, "BPF_MAP_LOOKUP_BATCH on a hash map works")
    except OSError as exc:
        return Feature("map_batch", False, f"batch lookup: {exc.strerror}")
    finally:
        m.release()


def _bpf_stats():
    path = "/proc/sys/kernel/bpf_stats_enabled"
    if not os.path.exists(path):
        return Feature("bpf_stats", False, f"{path} is missing")
    fd = lib().bpf_enable_stats(0)  # BPF_STATS_RUN_TIME, held only while the fd is open
    if fd < 0:
        return Feature("bpf_stats", False, f"BPF_ENABLE_STATS: {os.strerror(-fd)}")
    os.close(fd)
    with open(path) as f:
        return Feature("bpf_stats", True, f"BPF_ENABLE_STATS works (sysctl now {f.read().strip()})")


def lockdown_mode():
    path = "/sys/kernel/security/lockdown"
    if not os.path.exists(path):
        os.system("mount -t securityfs securityfs /sys/kernel/security >/dev/null 2>&1")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    return next((w.strip("[]") for w in text.split() if w.startswith("[")), None)


def _lockdown():
    mode = lockdown_mode()
    if mode is None:
        return Feature("lockdown", None, "securityfs lockdown file not readable")
    # Reported as "available" when lockdown leaves BPF tracing usable (none or integrity).
    return Feature("lockdown", mode != "confidentiality", f"lockdown mode is {mode}"
                   + ("; bpf_probe_read of kernel memory is blocked" if mode == "confidentiality"
                      else ""))


def _tracefs():
    if os.path.isdir(os.path.join(TRACEFS, "events")):
        return Feature("tracefs", True, f"{TRACEFS} mounted")
    return Feature("tracefs", False, f"tracefs is not mounted at {TRACEFS}")


FEATURES = {
    "btf": _btf, "jit": _jit, "tracepoint": _tracepoint, "tp_btf": _tp_btf, "raw_tp": _raw_tp,
    "kprobe": _kprobe, "fentry": _fentry, "uprobe": _uprobe, "perf_cpu_clock": _perf_cpu_clock,
    "hw_pmu": _hw_pmu, "ringbuf": _ringbuf, "map_batch": _map_batch, "bpf_stats": _bpf_stats,
    "lockdown": _lockdown, "tracefs": _tracefs,
}


def probe_all():
    return [probe(name, fresh=True) for name in FEATURES]
