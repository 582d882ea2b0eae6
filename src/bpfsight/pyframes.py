"""CPython frames for the stack tools: which interpreter a process runs (and where its
_PyRuntime is), the struct offsets of that version for the kernel-side walk
(bpf/include/pyframes.bpf.h), and code objects turned into `function (file:line)` by reading
the process's memory. Supported: CPython 3.10 to 3.13 (offsets from their DWARF, the same for
every release build of a minor version). Another version is reported once and its frames are
left out: never a guessed frame. Samples also tell whether the thread held the interpreter
lock (the GIL)."""
import os
import re

from .tool import flag

# struct offsets per version, in the order of struct py_offsets (pyframes.bpf.h), and the
# layout of code and string objects for reading them from user space (x86_64/arm64 builds).
# Read off each version's DWARF (gdb: print &((T *)0)->field on pyenv's builds of 3.10.13,
# 3.11.7, 3.12.1, 3.13.0; tests/test_pyframes_offsets.py checks them against whichever of
# those interpreters with symbols the machine has); struct layouts hold within a minor version.
NONE = 0xffffffff                     # PY_NONE: the version has no such field
THREAD_NATIVE_ID, THREAD_PTHREAD = 0, 1  # enum py_thread_id
LASTI_POINTER, LASTI_INDEX = 0, 1     # enum py_lasti
_STR_3_10 = {"ascii_data": 48, "compact_data": 72, "bytes_size": 16, "bytes_data": 32}
_STR_3_12 = {"ascii_data": 40, "compact_data": 56, "bytes_size": 16, "bytes_data": 32}
OFFSETS = {
    (3, 10): {"runtime_interpreters_head": 32, "interp_threads_head": 8, "tstate_next": 8,
              "tstate_thread_id": 176, "tstate_thread_id_kind": THREAD_PTHREAD,
              "tstate_cframe": NONE, "cframe_current_frame": 24,
              "frame_code": 32, "frame_previous": 24, "frame_prev_instr": 96,
              "frame_lasti_kind": LASTI_INDEX, "frame_owner": NONE, "code_adaptive": 0,
              "gil": 352, "gil_via_interp": 0, "gil_last_holder": 8, "gil_locked": 16, "gil_size": 208,
              "code_filename": 104, "code_name": 112, "code_qualname": None,
              "code_firstlineno": 40, "code_linetable": 120, "linetable": "3.10", **_STR_3_10},
    (3, 11): {"runtime_interpreters_head": 40, "interp_threads_head": 16, "tstate_next": 8,
              "tstate_thread_id": 160, "tstate_thread_id_kind": THREAD_NATIVE_ID,
              "tstate_cframe": 56, "cframe_current_frame": 8,
              "frame_code": 32, "frame_previous": 48, "frame_prev_instr": 56,
              "frame_lasti_kind": LASTI_POINTER, "frame_owner": 69, "code_adaptive": 184,
              "gil": 360, "gil_via_interp": 0, "gil_last_holder": 8, "gil_locked": 16, "gil_size": 208,
              "code_filename": 112, "code_name": 120, "code_qualname": 128,
              "code_firstlineno": 72, "code_linetable": 136, "linetable": "3.11", **_STR_3_10},
    (3, 12): {"runtime_interpreters_head": 40, "interp_threads_head": 72, "tstate_next": 8,
              "tstate_thread_id": 144, "tstate_thread_id_kind": THREAD_NATIVE_ID,
              "tstate_cframe": 56, "cframe_current_frame": 0,
              "frame_code": 0, "frame_previous": 8, "frame_prev_instr": 56,
              "frame_lasti_kind": LASTI_POINTER, "frame_owner": 70, "code_adaptive": 192,
              "gil": 384, "gil_via_interp": 1, "gil_last_holder": 8, "gil_locked": 16, "gil_size": 208,
              "code_filename": 112, "code_name": 120, "code_qualname": 128,
              "code_firstlineno": 68, "code_linetable": 136, "linetable": "3.11", **_STR_3_12},
    (3, 13): {"runtime_interpreters_head": 632, "interp_threads_head": 7344, "tstate_next": 8,
              "tstate_thread_id": 160, "tstate_thread_id_kind": THREAD_NATIVE_ID,
              "tstate_cframe": NONE, "cframe_current_frame": 72,
              "frame_code": 0, "frame_previous": 8, "frame_prev_instr": 56,
              "frame_lasti_kind": LASTI_POINTER, "frame_owner": 70, "code_adaptive": 200,
              "gil": 16, "gil_via_interp": 1, "gil_last_holder": 8, "gil_locked": 16, "gil_size": 208,
              "code_filename": 112, "code_name": 120, "code_qualname": 128,
              "code_firstlineno": 68, "code_linetable": 136, "linetable": "3.11", **_STR_3_12},
}
KERNEL_FIELDS = ("runtime_interpreters_head", "interp_threads_head", "tstate_next",
                 "tstate_thread_id", "tstate_thread_id_kind", "tstate_cframe",
                 "cframe_current_frame", "frame_code", "frame_previous", "frame_prev_instr",
                 "frame_lasti_kind", "frame_owner", "code_adaptive", "gil", "gil_via_interp",
                 "gil_last_holder", "gil_locked", "gil_size")
# How frame() names a Python frame: `function (file:line)`, line "?" when unknown (the flame
# graph's script has the same pattern, to colour them).
PYTHON_FRAME = re.compile(r"^\S+ \(.+:(\d+|\?)\)$")
_PYTHON_FILE = re.compile(r"(?:lib)?python(\d)\.(\d+)[a-z]*(?:\.so[.\d]*)?$")


class Interpreter:
    """The CPython in process pid: version, file, and _PyRuntime's address."""

    def __init__(self, pid, version, path, runtime):
        self.pid, self.version, self.path, self.runtime = pid, version, path, runtime

    @property
    def supported(self):
        return self.version in OFFSETS

    def describe(self):
        v = ".".join(map(str, self.version))
        return f"CPython {v} ({self.path})" + ("" if self.supported else
                                              ": this version's frames are not supported yet")

    def kernel_config(self):
        """(runtime address, [offsets in struct py_offsets order]) for py_procs."""
        off = OFFSETS[self.version]
        return self.runtime, [off[f] for f in KERNEL_FIELDS]


def find_interpreter(pid):
    """The Interpreter of process pid, or None when it maps no CPython."""
    from .binaries import symbol_offsets
    from .profile.symbols import read_maps
    maps = read_maps(pid, executable=False)
    candidates = [m for m in maps if m.path and _PYTHON_FILE.search(os.path.basename(m.path))]
    # libpython first: a python binary linked against it has no _PyRuntime of its own
    candidates.sort(key=lambda m: "libpython" not in m.path)
    for m in candidates:
        offsets = symbol_offsets(f"/proc/{pid}/root{m.path}", ["_PyRuntime"])
        if "_PyRuntime" not in offsets:
            continue
        at = offsets["_PyRuntime"]
        for mm in maps:
            if mm.path == m.path and mm.offset <= at < mm.offset + (mm.end - mm.start):
                major, minor = _PYTHON_FILE.search(os.path.basename(m.path)).groups()
                return Interpreter(pid, (int(major), int(minor)), m.path,
                                   mm.start + at - mm.offset)
    return None


class CodeReader:
    """Code object addresses of one process to `function (file:line)`, cached per code
    object (a code object does not change while it lives)."""

    def __init__(self, interp):
        self.interp = interp
        self.off = OFFSETS[interp.version]
        self._code = {}
        try:
            self._mem = open(f"/proc/{interp.pid}/mem", "rb", buffering=0)
        except OSError:
            self._mem = None

    def close(self):
        if self._mem:
            self._mem.close()

    def _read(self, addr, size):
        self._mem.seek(addr)
        return self._mem.read(size)

    def _u64(self, addr):
        return int.from_bytes(self._read(addr, 8), "little")

    def _str(self, addr):
        """A str object's text: compact ASCII (the common case) or compact UCS1/2/4."""
        state = int.from_bytes(self._read(addr + 32, 4), "little")
        length = self._u64(addr + 16)
        kind, ascii_ = (state >> 2) & 7, (state >> 6) & 1
        if ascii_:
            return self._read(addr + self.off["ascii_data"], length).decode("ascii", "replace")
        raw = self._read(addr + self.off["compact_data"], length * kind)
        return raw.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}.get(kind, "latin-1"),
                          "replace")

    def _code_info(self, code):
        if code not in self._code:
            try:
                table = self._u64(code + self.off["code_linetable"])
                size = self._u64(table + self.off["bytes_size"])
                if size > 1 << 16:
                    raise ValueError("not a line table")  # garbage, not a code object
                self._code[code] = (
                    self._str(self._u64(code + (self.off["code_qualname"] or
                                                 self.off["code_name"]))),
                    self._str(self._u64(code + self.off["code_filename"])),
                    int.from_bytes(self._read(code + self.off["code_firstlineno"], 4), "little"),
                    self._read(table + self.off["bytes_data"], size))
            except (OSError, ValueError, OverflowError):
                self._code[code] = None
        return self._code[code]

    def frame(self, code, lasti):
        """`qualname (file:line)`, or None when the code object cannot be read."""
        info = self._code_info(code) if self._mem else None
        if info is None:
            return None
        name, filename, first, table = info
        decode = addr_to_line_3_10 if self.off["linetable"] == "3.10" else addr_to_line
        try:
            line = decode(table, first, lasti)
        except IndexError:
            # a table that ends mid-entry: what was read is not a live code object's (a
            # frame caught while its chain changed, or one freed since the sample)
            line = None
        return f"{name} ({os.path.basename(filename)}:{line if line is not None else '?'})"


def addr_to_line_3_10(table, first_line, lasti):
    """The line of instruction lasti (in code units) from a 3.10 line table
    (Objects/lnotab_notes.txt): (bytecode bytes, line delta) pairs, -128 for no line."""
    line, addr, target = first_line, 0, lasti * 2
    for i in range(0, len(table) - 1, 2):
        sdelta, ldelta = table[i], table[i + 1]
        ldelta = ldelta - 256 if ldelta > 127 else ldelta
        if ldelta != -128:
            line += ldelta
        if addr <= target < addr + sdelta:
            return line if ldelta != -128 else None
        addr += sdelta
    return None


def addr_to_line(table, first_line, lasti):
    """The line of instruction lasti (in code units) from a 3.11+ location table (PEP 657's
    format, Objects/locations.md): entries of code units with a line delta each."""
    line, addr, i = first_line, 0, 0

    def varint():
        nonlocal i
        b = table[i]
        i += 1
        val, shift = b & 63, 6
        while b & 64:
            b = table[i]
            i += 1
            val |= (b & 63) << shift
            shift += 6
        return val

    def svarint():
        v = varint()
        return -(v >> 1) if v & 1 else v >> 1

    while i < len(table):
        head = table[i]
        i += 1
        code, length = (head >> 3) & 15, (head & 7) + 1
        if code == 15:  # no location
            delta, known = 0, False
        elif code == 14:  # long form
            delta, known = svarint(), True
            varint(), varint(), varint()
        elif code == 13:  # no column
            delta, known = svarint(), True
        elif code >= 10:  # one line: the delta is in the code, then two column bytes
            delta, known = code - 10, True
            i += 2
        else:  # short form: same line, one column byte
            delta, known = 0, True
            i += 1
        line += delta
        if addr <= lasti < addr + length:
            return line if known else None
        addr += length
    return None


def merge(native, python):
    """A user stack (leaf first) with the Python frames (leaf first) where the evaluator runs:
    the evaluator's frames give way to the Python code they ran; without one (a binary without
    frame pointers shows a short native stack), the Python frames follow the native ones."""
    evals = [i for i, f in enumerate(native) if "_PyEval_EvalFrame" in f]
    if not evals:
        return tuple(native) + tuple(python)
    first = evals[0]
    rest = [f for f in native[first:] if "_PyEval_EvalFrame" not in f]
    return tuple(native[:first]) + tuple(python) + tuple(rest)


# --- what the stack tools share (profile, offcputime, lockstat) ---

NO_PYTHON = flag("--no-python", help="leave out the Python frames of a CPython target (-p): "
                                     "native frames only")


def configure(spec, pid, tool):
    """Switch the kernel-side walk on when process pid runs a supported CPython; returns its
    Interpreter (None when it runs none, or one not supported, which is said once)."""
    import sys
    interp = find_interpreter(pid)
    if interp is not None and not interp.supported:
        sys.stderr.write(f"bpfsight {tool}: {interp.describe()}: native frames only\n")
        return None
    if interp is not None:
        spec.set_global("targ_python", True)
    return interp


def register(obj, interp):
    """Give the loaded object the interpreter's _PyRuntime and its version's offsets
    (py_procs), typed by the object's BTF."""
    import numpy as np
    procs = obj.map("py_procs")
    entry = np.zeros((), procs.value_dtype())
    entry["runtime"], offsets = interp.kernel_config()
    for name, value in zip(entry["off"].dtype.names, offsets):
        entry["off"][name] = value
    procs[interp.pid] = entry.tobytes()


def stacks(obj, interp, ids):
    """{py_stack_id: Python frames, leaf first} of the ids the samples carry, read while the
    process lives (its code objects are in its memory)."""
    ids = set(ids) - {0}
    if interp is None or not ids:
        return {}
    reader = CodeReader(interp)
    stored = obj.map("py_stacks")
    out = {}
    try:
        for sid in ids:
            s = stored.get(sid)
            if s is not None:
                out[sid] = tuple(reader.frame(int(c), int(i)) or "[unknown Python frame]"
                                 for c, i in zip(s["code"].tolist(), s["lasti"].tolist()) if c)
    finally:
        reader.close()
    return out


# enum py_gil (pyframes.bpf.h)
GIL_STATES = {1: "held", 2: "released"}


def gil_labels(tid, gil):
    """A sample's labels for the thread and its hold on the interpreter lock (none for a
    sample without Python frames)."""
    return {"tid": tid, "gil": GIL_STATES[gil]} if gil in GIL_STATES else {}


def gil_shares(samples):
    """Per Python thread: its on-CPU samples and the share taken while it held the
    interpreter lock (else it ran native code with the lock released, or was taking it)."""
    threads = {}
    for s in samples:
        if "gil" in s.labels:
            t = threads.setdefault(s.labels["tid"], [0, 0])
            t[0] += s.value
            t[1] += s.value if s.labels["gil"] == "held" else 0
    return [{"tid": tid, "samples": n, "gil_held_pct": round(100 * held / n, 1)}
            for tid, (n, held) in sorted(threads.items())]


def describe_gil(threads):
    if not threads:
        return None
    return "Python threads, share of on-CPU samples holding the interpreter lock: " + ", ".join(
        f"TID {t['tid']} {t['gil_held_pct']:.1f}% of {t['samples']}" for t in threads)


def with_frames(pair, frames):
    """A StackPair with the Python frames merged into its user stack (see merge)."""
    if not frames:
        return pair
    from dataclasses import replace
    return replace(pair, user=merge(pair.user, frames))
