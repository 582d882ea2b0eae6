"""gpulat: the CPU side of a CUDA process, per process and interval: latency histograms of its
CUDA runtime/driver calls (with the bytes copies and allocations asked for), of the NVIDIA
driver's ioctls by command, and the off-CPU time and run-queue latency of its threads while
they sit in a synchronisation call. No BCC namesake; the layout follows funclatency/ioctllat."""
import os
import re
import sys

from ..binaries import function_offsets, resolve_binary
from ..errors import UsageError
from ..profile.symbols import read_maps
from ..report.grouped import comm_of, render_histograms
from ..report.histogram import Log2Histogram
from ..target import resolve_pid
from ..tool import TIMESTAMP, Option, Tool, flag
from ..ioctls import decode_cmd

LAUNCH, COPY, SYNC, ALLOC = "launch", "copy", "sync", "alloc"

# (symbol, kind, 1-based position of its size argument or 0, per-thread-stream twin suffix).
# The _ptsz/_ptds twins are the entry points used under --default-stream per-thread; the
# runtime itself may call either. Every copy has its byte count third, every alloc second.
_API = (
    ("cudaLaunchKernel", LAUNCH, 0, "_ptsz"),
    ("cudaMemcpy", COPY, 3, "_ptds"),
    ("cudaMemcpyAsync", COPY, 3, "_ptsz"),
    ("cudaStreamSynchronize", SYNC, 0, "_ptsz"),
    ("cudaDeviceSynchronize", SYNC, 0, None),
    ("cudaEventSynchronize", SYNC, 0, None),
    ("cudaMalloc", ALLOC, 2, None),
    ("cudaMallocAsync", ALLOC, 2, "_ptsz"),
    ("cudaFree", ALLOC, 0, None),
    ("cuLaunchKernel", LAUNCH, 0, "_ptsz"),
    ("cuLaunchKernelEx", LAUNCH, 0, "_ptsz"),
    ("cuMemcpy", COPY, 3, "_ptds"),
    ("cuMemcpyAsync", COPY, 3, "_ptsz"),
    ("cuMemcpyHtoD_v2", COPY, 3, "_ptds"),
    ("cuMemcpyDtoH_v2", COPY, 3, "_ptds"),
    ("cuMemcpyDtoD_v2", COPY, 3, "_ptds"),
    ("cuMemcpyHtoDAsync_v2", COPY, 3, "_ptsz"),
    ("cuMemcpyDtoHAsync_v2", COPY, 3, "_ptsz"),
    ("cuMemcpyDtoDAsync_v2", COPY, 3, "_ptsz"),
    ("cuStreamSynchronize", SYNC, 0, "_ptsz"),
    ("cuCtxSynchronize", SYNC, 0, None),
    ("cuEventSynchronize", SYNC, 0, None),
    ("cuMemAlloc_v2", ALLOC, 2, None),
    ("cuMemAllocAsync", ALLOC, 2, "_ptsz"),
    ("cuMemFree_v2", ALLOC, 0, None),
)
# [(symbol, kind, size argument)]; the index is the function id the kernel side reports.
FUNCTIONS = [(name + suffix, kind, size) for name, kind, size, twin in _API
             for suffix in ("", twin) if suffix is not None]

# The runtime (libcudart.so.12, or a wheel's hash-suffixed libcudart-1a2b3c4d.so.12) and the
# driver (libcuda.so.1), as they appear in /proc/PID/maps; names for the ld.so cache fallback.
LIBRARIES = {"cudart": re.compile(r"^libcudart[-.\w]*\.so"), "cuda": re.compile(r"^libcuda\.so")}

# NVIDIA ioctls: _IOWR('F', nr, params) on /dev/nvidiactl and /dev/nvidiaN (the driver
# dispatches on nr: nv_escape.h, nv-ioctl-numbers.h), plain numbers on /dev/nvidia-uvm
# (uvm_ioctl.h, uvm_linux_ioctl.h).
NV_IOCTL_MAGIC = ord("F")
NV_ESCAPES = {
    0x27: "RM_ALLOC_MEMORY", 0x28: "RM_ALLOC_OBJECT", 0x29: "RM_FREE", 0x2A: "RM_CONTROL",
    0x2B: "RM_ALLOC", 0x34: "RM_DUP_OBJECT", 0x35: "RM_SHARE", 0x41: "RM_IDLE_CHANNELS",
    0x4A: "RM_VID_HEAP_CONTROL", 0x4E: "RM_MAP_MEMORY", 0x4F: "RM_UNMAP_MEMORY",
    0x52: "RM_GET_EVENT_DATA", 0x57: "RM_MAP_MEMORY_DMA", 0x58: "RM_UNMAP_MEMORY_DMA",
    0x5C: "RM_EXPORT_OBJECT_TO_FD", 0x5D: "RM_IMPORT_OBJECT_FROM_FD",
    0x5E: "RM_UPDATE_DEVICE_MAPPING_INFO", 200: "CARD_INFO", 201: "REGISTER_FD",
    206: "ALLOC_OS_EVENT", 207: "FREE_OS_EVENT", 209: "STATUS_CODE", 210: "CHECK_VERSION_STR",
    211: "IOCTL_XFER_CMD", 212: "ATTACH_GPUS_TO_FD", 213: "QUERY_DEVICE_INTR",
    214: "SYS_PARAMS", 217: "EXPORT_TO_DMABUF_FD", 218: "WAIT_OPEN_COMPLETE",
}
UVM_IOCTLS = {
    0x30000001: "INITIALIZE", 0x30000002: "DEINITIALIZE", 23: "CREATE_RANGE_GROUP",
    24: "DESTROY_RANGE_GROUP", 25: "REGISTER_GPU_VASPACE", 26: "UNREGISTER_GPU_VASPACE",
    27: "REGISTER_CHANNEL", 28: "UNREGISTER_CHANNEL", 29: "ENABLE_PEER_ACCESS",
    30: "DISABLE_PEER_ACCESS", 31: "SET_RANGE_GROUP", 33: "MAP_EXTERNAL_ALLOCATION",
    34: "FREE", 37: "REGISTER_GPU", 38: "UNREGISTER_GPU", 39: "PAGEABLE_MEM_ACCESS",
    44: "ENABLE_READ_DUPLICATION", 45: "DISABLE_READ_DUPLICATION", 46: "SET_ACCESSED_BY",
    47: "UNSET_ACCESSED_BY", 51: "MIGRATE", 53: "MIGRATE_RANGE_GROUP",
    65: "MAP_DYNAMIC_PARALLELISM_REGION", 66: "UNMAP_EXTERNAL", 68: "ALLOC_SEMAPHORE_POOL",
    70: "PAGEABLE_MEM_ACCESS_ON_GPU", 72: "VALIDATE_VA_RANGE", 73: "CREATE_EXTERNAL_RANGE",
    75: "MM_INITIALIZE",
}

# bpf/gpulat.bpf.c: the cookie layout and the kinds of wait.
_COOKIE_SYNC = 1 << 12
WAITS = {0: ("sync_runq", "run-queue latency"), 1: ("sync_offcpu", "off-CPU time")}


def cookie_of(func_id):
    """What each uprobe link of function func_id carries to the kernel side."""
    _, kind, size_arg = FUNCTIONS[func_id]
    return func_id | size_arg << 8 | (_COOKIE_SYNC if kind == SYNC else 0)


def ioctl_name(cmd, device):
    """NV_ESC_RM_CONTROL, UVM_INITIALIZE, ...; None for a command we have no name for."""
    if device.startswith("nvidia-uvm"):
        name = UVM_IOCTLS.get(cmd)
        return name and f"UVM_{name}"
    d = decode_cmd(cmd)
    if d["type"] == NV_IOCTL_MAGIC and d["nr"] in NV_ESCAPES:
        return f"NV_ESC_{NV_ESCAPES[d['nr']]}"
    return d["name"]


# --- finding the libraries ---

def pids_named(comm):
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().rstrip("\n") == comm:
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def host_path(pid, path):
    """A path, mapped by process pid, that opens the same file from here: itself when it is
    the same file in our mount namespace, else the one through the process's root (a
    container's library)."""
    inside = f"/proc/{pid}/root{path}"
    try:
        return os.path.realpath(path) if os.path.samefile(inside, path) else inside
    except OSError:
        return inside if os.path.exists(inside) else None


def mapped_libraries(pid):
    """{kind: [paths]} of the CUDA libraries process pid has mapped."""
    found = {}
    for m in read_maps(pid):
        kind = next((k for k, pat in LIBRARIES.items()
                     if m.file_backed and pat.search(os.path.basename(m.path))), None)
        path = kind and host_path(pid, m.path)
        if path:
            found.setdefault(kind, []).append(path)
    return found


def cached_library(kind, pids):
    """The ld.so cache's library of this kind, or None. With target processes that do not
    map it yet (the driver is dlopen'ed when CUDA initialises), say which file is probed:
    the process may load another copy (a wheel's, a venv's)."""
    try:
        path = resolve_binary(kind)
    except UsageError:
        return None
    if not LIBRARIES[kind].search(os.path.basename(path)):
        return None
    if pids:
        print(f"bpfsight gpulat: no lib{kind} mapped yet; probing {path} from the ld.so "
              "cache (--lib to choose)", file=sys.stderr)
    return path


def find_libraries(lib_args, pids):
    """Paths to probe, one per file: --lib as given; else what the target processes map, and
    the ld.so cache's for a kind none of them maps."""
    if lib_args:
        paths = [resolve_binary(p) for p in lib_args]
    else:
        found = {}
        for pid in pids:
            for kind, mapped in mapped_libraries(pid).items():
                found.setdefault(kind, []).extend(mapped)
        paths = [p for kind in LIBRARIES
                 for p in found.get(kind) or [cached_library(kind, pids)] if p]
    if not paths:
        where = f"PID {pids[0]}'s maps" if len(pids) == 1 else "the target processes' maps"
        raise UsageError(f"no CUDA library (libcudart*.so*, libcuda.so*) in {where} or the "
                         "ld.so cache; give --lib PATH")
    return _one_per_file(paths)


def _one_per_file(paths):
    """paths without a second name for the same file (two processes, two routes to one
    library): a file probed twice would count every call twice."""
    seen, unique = set(), []
    for path in paths:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            unique.append(path)
    return unique


def probe_plan(libs):
    """[(library, function id, file offset)] of every traced function the libraries define."""
    names = [f[0] for f in FUNCTIONS]
    plan = []
    for lib in libs:
        offsets = function_offsets(lib, names)
        plan += [(lib, i, offsets[n]) for i, n in enumerate(names) if n in offsets]
    if not plan:
        raise UsageError(f"{', '.join(libs)}: defines none of the CUDA functions gpulat traces "
                         f"({FUNCTIONS[0][0]}, ...)")
    return plan


def attach_plan(obj, plan, pid):
    # the return probe first: a call already running when its entry probe attaches then has
    # no frame, and its return is ignored, rather than leaving a frame that never returns
    for lib, func_id, offset in plan:
        cookie = cookie_of(func_id)
        obj.attach_uprobe("gpulat_call_return", lib, offset=offset, pid=pid, retprobe=True,
                          cookie=cookie)
        obj.attach_uprobe("gpulat_call_entry", lib, offset=offset, pid=pid, cookie=cookie)


# --- reading the maps ---

def _call(key, val, unit):
    name, kind, size_arg = FUNCTIONS[int(key["func"])]
    labels = {"type": "call", "function": name, "kind": kind}
    if size_arg:
        labels["bytes"] = int(val["bytes"])
    h = Log2Histogram.from_record(val["h"], unit, **labels)
    title = f"function = {name} ({kind})  count = {h.count}  avg = {h.total // h.count} {unit}"
    if size_arg:
        title += f"  bytes = {labels['bytes']}"
    return (0, int(key["func"])), title, h


def _ioctl(key, val, unit):
    cmd, device = int(key["cmd"]), comm_of(key["node"])
    name = ioctl_name(cmd, device)
    labels = {"type": "ioctl", "cmd": cmd, "name": name, "device": device,
              "errors": int(val["errors"])}
    h = Log2Histogram.from_record(val["h"], unit, **labels)
    title = (f"ioctl = {name + ' ' if name else ''}({cmd:#x}) on {device}  count = {h.count}  "
             f"errors = {labels['errors']}")
    return (1, cmd, device), title, h


def _wait(key, val, unit):
    what, text = WAITS[int(key["what"])]
    h = Log2Histogram.from_record(val["h"], unit, type=what)
    title = f"in sync calls: {text}  count = {h.count}  total = {h.total} {unit}"
    return (2, -int(key["what"])), title, h


class Gpulat(Tool):
    name = "gpulat"
    summary = "CUDA API and NVIDIA driver ioctl latency per process"
    description = (
        "Per process and interval: a latency histogram of each CUDA runtime/driver call "
        "(uprobes on libcudart*/libcuda.so* found in the target's /proc/PID/maps, else in the "
        "ld.so cache, or --lib), with the bytes that copies and allocations asked for; the "
        "NVIDIA driver's ioctls by command (fds on a char device named nvidia* or of major "
        "195); and, while a thread is inside a *Synchronize call, its off-CPU time and "
        "run-queue latency: off-CPU time that is not run-queue latency is time blocked waiting "
        "for the GPU, run-queue latency is the thread waiting for a core. Each traced call "
        "costs two uprobe traps (a few microseconds); calls already running when tracing "
        "starts are not counted.")

    intervals = target = True
    options = (
        TIMESTAMP,
        flag("-m", "--milliseconds", help="millisecond histograms"),
        Option("--comm", metavar="NAME",
               help="trace processes with this name (the main thread's comm; the kernel keeps "
                    "15 characters)"),
        Option("--lib", metavar="PATH", action="append",
               help="probe this CUDA runtime/driver library (or a binary with CUDA linked in) "
                    "instead of finding them; repeatable"))

    def banner_for(self, opts):
        return (f"Tracing {len({f for _, f, _ in self._plan})} CUDA functions in "
                f"{', '.join(os.path.basename(lib) for lib in self._libs)}, NVIDIA ioctls and "
                "sync-call waits... Hit Ctrl-C to end.")

    def configure(self, spec, opts):
        comm = self._comm(opts)
        resolve_pid(opts.pid)
        pids = [opts.pid] if opts.pid else pids_named(comm) if comm else []
        self._libs = find_libraries(opts.lib, pids)
        self._plan = probe_plan(self._libs)
        spec.set_global("targ_ms", opts.milliseconds)
        if comm:
            spec.set_global("targ_comm", comm.encode())

    def sized(self, spec, opts):
        task_storage = spec.programs["gpulat_switch"].autoload
        spec.set_global("use_task_storage", task_storage)
        if task_storage:
            spec.maps["threads_by_tid"].max_entries = 1  # the raw_tp fallback's state

    def attach(self, obj, opts):
        obj.attach_all()
        attach_plan(obj, self._plan, opts.pid or -1)

    def collect(self, obj, opts):
        """Titled Log2Histograms by process (labels pid, comm and what each measures): CUDA
        calls, NVIDIA ioctls, sync-call waits."""
        unit = "msecs" if opts.milliseconds else "usecs"
        procs = {}
        for name, entry in (("calls", _call), ("ioctls", _ioctl), ("waits", _wait)):
            keys, values = obj.map(name).read_all(delete=True)
            for key, val in zip(keys, values):
                if not val["h"]["slots"].any():  # read between its creation and first count
                    continue
                pid = int(key["tgid"])
                comm, rows = procs.setdefault(pid, (comm_of(val["comm"]), []))
                rows.append(entry(key, val, unit))
        hists = []
        for pid, (comm, rows) in sorted(procs.items()):
            for _, title, h in sorted(rows, key=lambda r: r[0]):
                h.labels.update(pid=pid, comm=comm)
                h.title = title
                hists.append(h)
        return hists

    def render(self, hists, opts, out):
        pid = None
        for h in hists:
            if h.labels["pid"] != pid:
                pid = h.labels["pid"]
                out.text(f"\nPID {pid} {h.labels['comm']}")
            render_histograms(out, [h])

    @staticmethod
    def _comm(opts):
        if opts.comm is None:
            return None
        if opts.pid:
            raise UsageError("give -p PID or --comm NAME, not both")
        if not opts.comm or "\0" in opts.comm:
            raise UsageError("invalid --comm: expected a process name")
        return opts.comm.encode()[:15].decode(errors="ignore")  # TASK_COMM_LEN - 1 bytes
