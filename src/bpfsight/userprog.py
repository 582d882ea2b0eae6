"""Users' own BPF programs: a `.bpf.c` compiled with clang against this kernel's `vmlinux.h`
(or a `.bpf.o`), every program attached by its section, every map read and decoded from the
object's BTF into plain data. The engine of `bpfsight run` and of `bpfsight.Program`.

What a map's contents become (no declarations needed beyond the C):
- a value with a `slots` array of counters (`struct hist` of `hist.h`, or any struct with
  `u64 slots[N]`), or a `u64` array value of a map whose name contains "hist": one log2
  histogram per key;
- anything else: a table, one row per key, key fields then value fields; per-CPU values
  summed over CPUs (integer fields; text fields keep the first CPU's that is set);
- a key or value field named `*stack_id` whose value is a stack id of the object's stack map:
  the stack, symbolised (kernel when the name says `kern`, else the user stack of the row's
  `pid`/`tgid`);
- `.bss`/`.data` globals: one row of their current values.
Ring buffer records of a ring named NAME decode as what the global `NAME_record` points to,
else `struct NAME`, else `struct event`. Declaring `struct event *events_record;` keeps the type
in the object's BTF: clang leaves out types seen only inside inlined code (BPF_PROG bodies).
"""
import os
import shutil
import subprocess
import tempfile

from .bpf.errors import AttachError, BPFError, NotSupportedError
from .bpf.maps import PERF_EVENT_ARRAY, RINGBUF, STACK_TRACE
from .bpf.object import RECORD_SUFFIX
from .cache import cache_dir, write_atomically
from .errors import UsageError

# Sections libbpf can attach by themselves (the hook is in the section name).
_SELF_ATTACHING = ("tracepoint/", "tp/", "tp_btf/", "raw_tp/", "raw_tracepoint/")
_PROBES = ("uprobe", "uretprobe", "usdt")
_NEEDS_KPROBES = ("kprobe", "kretprobe", "ksyscall", "kretsyscall", "kprobe.multi",
                  "kretprobe.multi")
_NEEDS_TRAMPOLINES = ("fentry", "fexit", "fmod_ret", "lsm", "iter")
_INTERNAL = (".rodata", ".kconfig", ".rodata.str1.1")
_UNREAD = {PERF_EVENT_ARRAY, STACK_TRACE, RINGBUF}  # not tables of counters
REPO_BPF = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "bpf")
DEFAULT_FREQ = 49


def include_dirs():
    """The project's BPF headers (bpf/include: hist.h, bits.bpf.h, ...) and a vmlinux.h of
    this kernel: the checkout's, or one generated once into ~/.cache/bpfsight."""
    include = os.path.join(REPO_BPF, "include")
    generated = os.path.join(include, "generated")
    if os.path.isfile(os.path.join(generated, "vmlinux.h")):
        return [include, generated]
    header = cache_dir("vmlinux.h")
    if not os.path.isfile(header):
        bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
        try:
            text = subprocess.run([bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                                   "format", "c"], capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise NotSupportedError("vmlinux.h", f"bpftool could not dump the kernel's BTF ({exc})")
        write_atomically(header, text)
    return ([include] if os.path.isdir(include) else []) + [os.path.dirname(header)]


def compile_c(source, out_dir):
    """clang -target bpf, as bpf/Makefile builds the shipped tools; returns the object's path.
    A compile error is a UsageError carrying clang's first error lines."""
    clang = shutil.which("clang")
    if clang is None:
        raise NotSupportedError("clang", "compiling a .bpf.c needs clang (apt-get install clang)")
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    out = os.path.join(out_dir, os.path.basename(source).rsplit(".c", 1)[0] + ".o")
    cmd = [clang, "-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", "-Wall",
           "-Wno-unused-function", *[f"-I{d}" for d in include_dirs()], "-c", source, "-o", out]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        errors = [ln for ln in done.stderr.splitlines() if "error:" in ln] or \
            done.stderr.strip().splitlines()[-1:]
        more = f" (and {len(errors) - 2} more)" if len(errors) > 2 else ""
        raise UsageError(f"{source} does not compile: " + " | ".join(errors[:2]) + more)
    return out


class Program:
    """A user's BPF program, loaded and attached: `with Program("x.bpf.c") as p: p.snapshot()`.

    path: a .bpf.c (compiled here) or a .bpf.o. pid: perf_event programs sample this process
    only (otherwise every CPU). freq: perf_event sampling rate, Hz. globals: `const volatile`
    values to set before load, {name: int or bytes}.
    Everything detaches and is freed on close (or at the end of the `with`)."""

    def __init__(self, path, pid=None, freq=DEFAULT_FREQ, globals=None):
        self.path = path
        self.pid = pid
        self.freq = freq
        self.globals = dict(globals or {})
        self.obj = None
        self._rings = {}
        self._stacks = None
        self._tmp = None

    # --- lifecycle ---

    def open(self):
        from .bpf.object import ObjectSpec, check_privileges
        from .tracefs import mount_tracefs
        if not os.path.isfile(self.path):
            raise UsageError(f"no such file: {self.path}")
        path = self.path
        if path.endswith(".c"):
            self._tmp = tempfile.TemporaryDirectory(prefix="bpfsight-run-")
            path = compile_c(self.path, self._tmp.name)
        elif not path.endswith(".o"):
            raise UsageError(f"{self.path}: expected a .bpf.c source or a .bpf.o object")
        check_privileges()
        mount_tracefs()
        try:
            spec = ObjectSpec(path)
        except OSError as exc:
            raise UsageError(f"{self.path} is not a BPF object libbpf can open ({exc.strerror})")
        for prog in spec.programs.values():
            _check_section(prog.name, prog.section)
        for name, value in self.globals.items():
            spec.set_global(name, value)
        return spec

    def start(self):
        """Open, load and attach; returns self."""
        spec = self.open()
        self.obj = spec.load()
        try:
            self._attach()
        except BaseException:
            self.close()
            raise
        return self

    def _attach(self):
        from .bpf.links import attach_cpu_clock
        for name, prog in self.obj.programs.items():
            if prog.section.startswith("perf_event"):
                attach_cpu_clock(self.obj, name, self.freq, self.pid if self.pid else -1)
            else:
                self.obj.attach(name)

    def close(self):
        for ring, _ in self._rings.values():
            ring.close()
        self._rings.clear()
        if self.obj is not None:
            self.obj.close()
            self.obj = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # --- maps ---

    def maps(self):
        """Names of the maps snapshot() reads."""
        return [m.name for m in self.obj.maps.values()
                if m.type not in _UNREAD and not m.name.endswith(_INTERNAL)]

    def snapshot(self, top=None):
        """Every map's contents now, as plain data: [MapReading], see the module's doc."""
        readings = []
        for name in self.maps():
            m = self.obj.map(name)
            if m.name.endswith((".bss", ".data")):
                readings.append(self._globals(m))
                continue
            keys, values = m.read_all()
            readings.append(self._reading(m, keys, values, top))
        return readings

    def _reading(self, m, keys, values, top):
        from .report.histogram import Log2Histogram
        keys = [_plain(k) for k in keys]
        values = [_plain(_sum_cpus(v) if m.percpu else v) for v in values]
        hist_field = _hist_field(m)
        if hist_field is not None:
            rows = []
            for key, value in zip(keys, values):
                slots = value[hist_field] if hist_field else value
                total = value.get("total", 0) if isinstance(value, dict) else 0
                hist = Log2Histogram(slots, total, unit="value")
                rest = {k: v for k, v in value.items() if k not in (hist_field, "total")} \
                    if isinstance(value, dict) else {}
                rows.append({"key": key, "hist": hist, **rest})
            rows.sort(key=lambda r: -r["hist"].count)
            return {"map": m.name, "kind": "hist", "rows": rows[:top] if top else rows,
                    "keys": len(rows)}
        rows = [{"key": k, "value": v} for k, v in zip(keys, values)]
        rows.sort(key=lambda r: -_first_number(r["value"]))
        shown = rows[:top] if top else rows
        self._symbolise(shown)
        return {"map": m.name, "kind": "table", "rows": shown, "keys": len(rows)}

    def _globals(self, m):
        import numpy as np
        raw = m.lookup_bytes(bytes(4)) or b""
        values = {}
        section = m.name[m.name.index("."):]  # libbpf names it "<object>.bss"
        for var, (offset, size, type_id) in self.obj.btf.datasec(section).items():
            if var.endswith(RECORD_SUFFIX):
                continue
            dt = self.obj.btf.dtype(type_id)
            values[var] = _plain(np.frombuffer(raw, dtype=dt, count=1, offset=offset)[0])
        return {"map": m.name, "kind": "globals", "values": values}

    def _symbolise(self, rows):
        """Stack id fields -> symbolised frames, in place."""
        stackmap = next((m for m in self.obj.maps.values() if m.type == STACK_TRACE), None)
        if stackmap is None or not rows:
            return
        ids = [(part, field) for part in ("key", "value") if isinstance(rows[0][part], dict)
               for field in rows[0][part] if field.endswith(("stack_id", "stackid"))]
        if not ids:
            return
        from .profile.stacks import StackDecoder
        from .profile.symbols import Symbolizer
        if self._stacks is None:
            self._stacks = StackDecoder(stackmap, Symbolizer())
        wanted = []  # (row, part, field, request): decoded together, each address looked up once
        for row in rows:
            pid = _pid_of(row)
            for part, field in ids:
                sid, kernel = row[part][field], "kern" in field
                if isinstance(sid, int) and sid >= 0:
                    wanted.append((row, part, field, (pid, sid if kernel else -1,
                                                      -1 if kernel else sid)))
        pairs = self._stacks.decode([req for *_, req in wanted])
        for row, part, field, req in wanted:
            pair = pairs[req]
            row[part][field] = list(pair.kernel if "kern" in field else pair.user)

    # --- ring buffers ---

    def rings(self):
        return [m.name for m in self.obj.maps.values() if m.type == RINGBUF]

    def _ring_readers(self):
        from .bpf.ringbuf import RingBuffer
        for name in self.rings():
            if name not in self._rings:
                self._rings[name] = (RingBuffer(self.obj.map(name)), self.obj.record_dtype(name))
        return self._rings

    def poll(self, timeout_s):
        """Wait up to timeout_s for ring buffer records; True when some are waiting."""
        rings = [ring for ring, _ in self._ring_readers().values()]
        for i, ring in enumerate(rings):
            if ring.poll(timeout_s if i == 0 else 0):
                return True
        return False

    def records(self):
        """Records waiting in every ring buffer, as dicts with the ring's name under "ring"."""
        import numpy as np
        out = []
        for name, (ring, dt) in self._ring_readers().items():
            for raw in ring.read():
                if dt is None:
                    out.append({"ring": name, "bytes": raw.hex()})
                    continue
                raw = raw[:dt.itemsize].ljust(dt.itemsize, b"\0")
                out.append({"ring": name, **_plain(np.frombuffer(raw, dtype=dt, count=1)[0])})
        return out


def _check_section(name, section):
    """A program this kernel or this command cannot attach: one clear line before loading."""
    kind = section.split("/", 1)[0]
    if kind in _NEEDS_KPROBES:
        from .bpf import features
        if features.probe("kprobe").available is False:
            raise NotSupportedError("kprobes", f"program {name} is SEC(\"{section}\") but this "
                                    "kernel has no kprobes: use a tracepoint (tp_btf/, raw_tp/, "
                                    "tracepoint/) that carries the same event")
    elif kind in _NEEDS_TRAMPOLINES:
        from .bpf import features
        if features.probe("fentry").available is False:
            raise NotSupportedError(kind, f"program {name} is SEC(\"{section}\") but this kernel "
                                    "cannot attach BPF trampolines: use a tracepoint instead")
    elif kind in _PROBES and ":" not in section:
        raise UsageError(f"program {name} is SEC(\"{section}\"): name the binary and function, "
                         f"e.g. SEC(\"{kind}/libc.so.6:malloc\")")
    elif not (section.startswith(_SELF_ATTACHING) or kind in _PROBES or kind == "perf_event"
              or kind in _NEEDS_KPROBES or kind in _NEEDS_TRAMPOLINES):
        raise UsageError(f"program {name} is SEC(\"{section}\"), which bpfsight run cannot attach "
                         "(tracepoint/, tp_btf/, raw_tp/, uprobe/, uretprobe/, usdt/, perf_event)")


def _hist_field(m):
    """'slots' when values are structs with a slots array, '' for a bare u64 array value of a
    map named *hist*, None otherwise."""
    dt = m.value_dtype()
    if dt is None:
        return None
    if m.percpu and dt.names == ("v",):
        dt = dt["v"]
    if dt.names and "slots" in dt.names and dt["slots"].subdtype is not None:
        return "slots"
    if dt.subdtype is not None and dt.subdtype[0].kind == "u" and "hist" in m.name:
        return ""
    return None


def _sum_cpus(per_cpu):
    """One value from a per-CPU row: integer fields summed, others from the first CPU that set
    them."""
    import numpy as np
    dt = per_cpu.dtype
    if dt.names is None:
        if dt.kind in "iub" or (dt.subdtype and dt.subdtype[0].kind in "iu"):
            return per_cpu.sum(axis=0)
        return next((v for v in per_cpu if np.any(v)), per_cpu[0])
    out = np.zeros(1, dtype=dt)[0]
    for name in dt.names:
        out[name] = _sum_cpus(per_cpu[name])
    return out


def _plain(value):
    """A numpy scalar, record or array as Python data: ints, floats, str (NUL-terminated
    text), lists and dicts."""
    import numpy as np
    from .report.grouped import comm_of
    if isinstance(value, np.void) and value.dtype.names:
        return {name: _plain(value[name]) for name in value.dtype.names}
    if isinstance(value, (bytes, np.bytes_)):
        return comm_of(value)
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            return [_plain(v) for v in value]
        return value.tolist()
    if isinstance(value, np.void):
        return bytes(value).hex()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _first_number(value):
    if isinstance(value, dict):
        return next((v for v in value.values() if isinstance(v, (int, float))), 0)
    return value if isinstance(value, (int, float)) else 0


def _pid_of(row):
    for part in ("key", "value"):
        if isinstance(row[part], dict):
            for field in ("tgid", "pid"):
                if isinstance(row[part].get(field), int):
                    return row[part][field]
    return -1


__all__ = ["Program", "compile_c", "include_dirs", "AttachError", "BPFError"]
