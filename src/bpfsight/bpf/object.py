"""BPF objects in two stages, as in cilium/ebpf: an ObjectSpec is the opened ELF whose read-only
globals, program autoload and map sizes may still be edited; `load()` turns it into an Object,
whose programs attach and whose maps are read. Closing an Object detaches and frees everything.
"""
import ctypes
import errno as errno_mod
import os

from . import _libbpf, info
from ._libbpf import check_ptr, lib
from .errors import (AttachError, BPFError, LoadError, MissingTracepointError, NoBTFError,
                     PermissionDenied, VerifierError)
from .btf import BTF
from .links import Link
from .maps import Map

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39
RECORD_SUFFIX = "_record"  # a global naming a ring's record type (see Object.record_dtype)


def object_path(name):
    """Path of a shipped object, e.g. object_path("runqlat") -> .../objects/runqlat.bpf.o."""
    # a path next to the package, not importlib.resources: that import alone costs ~12 ms
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "objects", f"{name}.bpf.o")
    if not os.path.isfile(path):
        raise LoadError(f"{path} is missing: build the BPF objects first (make -C bpf)")
    return str(path)


def check_privileges():
    """Fail early, with a fix, when this process cannot load BPF programs."""
    caps = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
    has = lambda bit: bool(caps & (1 << bit))  # noqa: E731
    if not (has(_CAP_SYS_ADMIN) or (has(_CAP_BPF) and has(_CAP_PERFMON))):
        raise PermissionDenied()
    if not os.path.exists(VMLINUX_BTF):
        raise NoBTFError(VMLINUX_BTF)


class ProgramSpec:
    def __init__(self, ptr):
        self._ptr = ptr
        self.name = lib().bpf_program__name(ptr).decode()
        self.section = lib().bpf_program__section_name(ptr).decode()

    @property
    def autoload(self):
        return bool(lib().bpf_program__autoload(self._ptr))

    @autoload.setter
    def autoload(self, value):
        lib().bpf_program__set_autoload(self._ptr, bool(value))

    def __repr__(self):
        return f"ProgramSpec({self.name!r}, {self.section!r}, autoload={self.autoload})"


class MapSpec:
    def __init__(self, ptr):
        self._ptr = ptr
        self.name = lib().bpf_map__name(ptr).decode()

    @property
    def max_entries(self):
        return lib().bpf_map__max_entries(self._ptr)

    @max_entries.setter
    def max_entries(self, value):
        _libbpf.check_int(lib().bpf_map__set_max_entries(self._ptr, int(value)),
                          f"set max_entries of map {self.name}")

    @property
    def type(self):
        return lib().bpf_map__type(self._ptr)

    def reshape(self, map_type, max_entries):
        """Change the map's kind before load. Tools declare the cheap shape for their default
        mode, e.g. a one-slot array when everything aggregates under key 0 (the verifier
        inlines an array lookup; a hash lookup is a helper call and a walk), and reshape it
        into a hash for per-process or per-thread keys."""
        _libbpf.check_int(lib().bpf_map__set_type(self._ptr, int(map_type)),
                          f"set type of map {self.name}")
        self.max_entries = max_entries


class ObjectSpec:
    """An opened, not yet loaded, BPF ELF object."""
    _ptr = None

    def __init__(self, path):
        self.path = path
        self._ptr = check_ptr(lib().bpf_object__open_file(path.encode(), None), f"open {path}")
        self.name = lib().bpf_object__name(self._ptr).decode()
        self.programs = {p.name: p for p in map(ProgramSpec, _iterate(
            lib().bpf_object__next_program, self._ptr))}
        self.maps = {m.name: m for m in map(MapSpec, _iterate(
            lib().bpf_object__next_map, self._ptr))}
        self._rodata = None

    @classmethod
    def open(cls, name):
        """Open a shipped object by tool name."""
        return cls(object_path(name))

    # --- read-only globals (`const volatile` in C) ---

    def _rodata_vars(self):
        """{name: (offset, size, type id)} of the variables in .rodata, from the object's BTF."""
        if self._rodata is None:
            btf = lib().bpf_object__btf(self._ptr)
            self._rodata = BTF(btf).datasec(".rodata") if btf else {}
        return self._rodata

    def has_global(self, name):
        return name in self._rodata_vars()

    def set_global(self, name, value):
        """Set a `const volatile` global before load: int/bool or bytes of the right size."""
        try:
            offset, size, _ = self._rodata_vars()[name]
        except KeyError:
            raise BPFError(f"{self.name}: no read-only global named {name!r}") from None
        if isinstance(value, (bool, int)):
            data = (int(value) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        else:
            data = bytes(value).ljust(size, b"\0")[:size]
        rodata = next(m for m in self.maps.values() if m.name.endswith(".rodata"))
        psize = ctypes.c_size_t()
        base = check_ptr(lib().bpf_map__initial_value(rodata._ptr, ctypes.byref(psize)),
                         f"{self.name}: .rodata")
        ctypes.memmove(base + offset, data, size)

    def set_globals(self, **values):
        for name, value in values.items():
            self.set_global(name, value)

    def load(self):
        """Load into the kernel. This spec is consumed: use the returned Object."""
        check_privileges()
        lines = _libbpf.start_capture()
        try:
            ret = lib().bpf_object__load(self._ptr)
        finally:
            _libbpf.stop_capture()
        if ret < 0:
            err = self._load_error(-ret, lines)
            self.close()
            raise err
        obj = Object(self._ptr, self.name, self.programs)
        self._ptr = None
        return obj

    def _load_error(self, err, lines):
        if err == errno_mod.EPERM:
            return PermissionDenied(f"the kernel refused to load {self.name} (EPERM)")
        failing = next((ln.split("'")[1] for ln in lines
                        if "prog '" in ln and "failed" in ln), None)
        for ln in lines:  # a tp_btf or raw_tp hook this kernel lacks
            if "failed to find kernel BTF type ID of" in ln:
                hook = ln.rsplit("'", 2)[-2] if ln.count("'") >= 2 else ln
                return MissingTracepointError(hook.replace("btf_trace_", ""), self.name)
        text = "\n".join(lines).splitlines()
        begin = next((i for i, ln in enumerate(text) if "BEGIN PROG LOAD LOG" in ln), None)
        if begin is not None:
            end = next((i for i, ln in enumerate(text) if "END PROG LOAD LOG" in ln), len(text))
            return VerifierError(failing or self.name, text[begin + 1:end], os.strerror(err))
        tail = " | ".join(lines[-2:])
        return LoadError(f"loading {self.name} failed: {os.strerror(err)}"
                         + (f" ({tail})" if tail else ""))

    def close(self):
        if self._ptr:
            lib().bpf_object__close(self._ptr)
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class Program:
    def __init__(self, ptr, name, section):
        self._ptr = ptr
        self.name = name
        self.section = section

    @property
    def fd(self):
        return lib().bpf_program__fd(self._ptr)


def load_all(specs):
    """Load several specs at once, one thread each: libbpf parses the kernel's BTF again for
    every object (~10 ms), and ctypes releases the GIL while it does. The Objects come back in
    order; when any load fails, the others are closed and the first error is raised."""
    import threading
    results = [None] * len(specs)

    def load(i):
        try:
            results[i] = specs[i].load()
        except BaseException as exc:  # handed to the caller's thread below
            results[i] = exc

    threads = [threading.Thread(target=load, args=(i,)) for i in range(1, len(specs))]
    for t in threads:
        t.start()
    load(0)
    for t in threads:
        t.join()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        for r in results:
            if isinstance(r, Object):
                r.close()
        raise failed[0]
    return results


class Object:
    """A loaded BPF object: programs to attach, maps to read. Close it (or use `with`)."""
    _ptr = None
    btf = None

    def __init__(self, ptr, name, program_specs):
        self._ptr = ptr
        self.name = name
        self.programs = {n: Program(p._ptr, n, p.section)
                         for n, p in program_specs.items() if p.autoload}
        self.links = []
        self._maps = {}
        self.btf = BTF(lib().bpf_object__btf(ptr)) if lib().bpf_object__btf(ptr) else None
        for mptr in _iterate(lib().bpf_object__next_map, ptr):
            m = Map.from_libbpf(mptr, self.btf)
            self._maps[m.name] = m
        info.notify("object_loaded", self)

    def map(self, name, key=None, value=None):
        """The map `name`, typed by the object's BTF; with key/value dtypes (or dtype specs),
        a view typed by those instead (see Map.typed)."""
        m = self._maps[name]
        return m.typed(key, value) if key is not None or value is not None else m

    def record_dtype(self, ring="events"):
        """The dtype of ring buffer `ring`'s records, from the object's BTF: what the global
        `RING_record` points to (bpf/include/events.bpf.h's EVENT_RECORD), else `struct RING`,
        else `struct event`; None when the object names no type for them."""
        if self.btf is None:
            return None
        dt = self.btf.variable_dtype(ring + RECORD_SUFFIX)
        for candidate in (ring, "event"):
            dt = dt if dt is not None else self.btf.struct_dtype(candidate)
        return dt

    @property
    def maps(self):
        return dict(self._maps)

    def attach(self, name):
        """Attach one program by the hook named in its section (tp_btf, raw_tp, tracepoint)."""
        prog = self.programs[name]
        ptr = lib().bpf_program__attach(prog._ptr)
        if not ptr:
            raise _attach_error(prog.section, ctypes.get_errno(), self.name)
        link = Link(ptr, f"{prog.name} -> {prog.section}")
        self.links.append(link)
        return link

    def attach_all(self):
        """Attach every loaded program whose section names its hook (iterators are run, with
        run_iter, not attached)."""
        for name, prog in self.programs.items():
            if not prog.section.startswith(("uprobe", "uretprobe", "perf_event", "usdt",
                                            "iter")):
                self.attach(name)
        return self.links

    def run_iter(self, name):
        """Run iterator program `name` (SEC("iter/task") and the like) once over everything it
        walks; returns what it wrote with bpf_seq_printf and the like."""
        prog = self.programs[name]
        ptr = lib().bpf_program__attach_iter(prog._ptr, None)
        if not ptr:
            raise _attach_error(prog.section, ctypes.get_errno(), self.name)
        link = Link(ptr, f"{prog.name} -> {prog.section}")
        try:
            fd = lib().bpf_iter_create(lib().bpf_link__fd(ptr))
            if fd < 0:
                raise AttachError(f"{self.name}: running {prog.section} failed: "
                                  f"{os.strerror(-fd)}")
            try:
                chunks = []
                while chunk := os.read(fd, 1 << 16):
                    chunks.append(chunk)
            finally:
                os.close(fd)
        finally:
            link.destroy()
        return b"".join(chunks)

    def attach_uprobe(self, name, binary, symbol=None, offset=0, pid=-1, retprobe=False,
                      cookie=0):
        from .links import attach_uprobe
        link = attach_uprobe(self.programs[name], binary, symbol, offset, pid, retprobe, cookie)
        self.links.append(link)
        return link

    def attach_tracepoint(self, name, category, event, cookie=0):
        from .links import attach_tracepoint
        link = attach_tracepoint(self.programs[name], category, event, cookie)
        self.links.append(link)
        return link

    def attach_tcx(self, name, ifindex, egress=False):
        from .links import attach_tcx
        link = attach_tcx(self.programs[name], ifindex, egress)
        self.links.append(link)
        return link

    def attach_tc_netlink(self, directions, ifindex, enter=None):
        """Programs as tc filters through netlink: directions is [(program, egress)]."""
        from .links import TcClsact
        link = TcClsact(ifindex, enter) if enter else TcClsact(ifindex)
        self.links.append(link)  # destroyed (filters and an added qdisc removed) on close
        for name, egress in directions:
            link.attach(self.programs[name], egress)
        return link

    def attach_xdp(self, name, ifindex):
        from .links import attach_xdp
        link = attach_xdp(self.programs[name], ifindex)
        self.links.append(link)
        return link

    def attach_perf_event(self, name, perf_fd):
        from .links import attach_perf_event
        link = attach_perf_event(self.programs[name], perf_fd)
        self.links.append(link)
        return link

    def detach(self):
        """Destroy every link: no more events; the maps stay readable until close()."""
        for link in reversed(self.links):
            link.destroy()
        self.links.clear()

    def close(self):
        """Detach every link, then free programs and maps. Safe to call twice."""
        if self._ptr:  # observers read the last run counts while the programs exist
            info.notify("object_closing", self)
        self.detach()
        for m in self._maps.values():
            m.release()
        if self.btf:
            self.btf.close()  # libbpf frees it with the object
        if self._ptr:
            lib().bpf_object__close(self._ptr)
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


def _attach_error(section, err, objname):
    kind, _, hook = section.partition("/")
    if err in (errno_mod.ENOENT, errno_mod.ESRCH):
        return MissingTracepointError(hook.replace("/", ":"), objname)
    if err == errno_mod.EPERM:
        return PermissionDenied(f"attaching {section} was refused (EPERM)")
    return AttachError(f"{objname}: attaching {section} failed: {os.strerror(err or errno_mod.EINVAL)}")


def _iterate(next_fn, obj):
    item = next_fn(obj, None)
    while item:
        yield item
        item = next_fn(obj, item)
