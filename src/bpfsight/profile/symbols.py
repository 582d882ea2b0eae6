"""Addresses to function names, in user space, after collection.

Kernel: /proc/kallsyms, read once per run. User: the ELF .symtab/.dynsym of the file each
address is mapped from (via a /proc/PID/maps snapshot, so PIE executables and shared libraries
get their load offsets right), with the symbols of a separate debug file found by build-id or
.gnu_debuglink under /usr/lib/debug when there is one; JIT code (Python 3.12 `-X perf`, Node
`--perf-basic-prof`, Java agents) through /tmp/perf-PID.map; the vDSO from a copy of its
image (vdso_image). Anything else is "[unknown]".

Lookups are vectorised per ELF file with numpy and cached by (file, file offset): a process's
shared libraries are read once however many processes map them.
"""
import bisect
import os
import struct
from dataclasses import dataclass
from functools import lru_cache

from ..cache import cache_dir, write_atomically

UNKNOWN = "[unknown]"
VDSO = "[vdso]"
DEBUG_DIRS = ("/usr/lib/debug",)
_STT_FUNC, _STT_GNU_IFUNC = 2, 10


def _np():
    import numpy as np
    return np


# --- sorted symbol tables ---

class SymbolTable:
    """Symbols sorted by address; a symbol of size 0 reaches the next one."""

    def __init__(self, addrs, sizes, names):
        np = _np()
        order = np.argsort(addrs, kind="stable")
        self.addrs = np.asarray(addrs, dtype=np.uint64)[order]
        self.ends = self.addrs + np.asarray(sizes, dtype=np.uint64)[order]
        self._names = names  # indexable by original position (list or lazy table)
        self._order = order

    def __len__(self):
        return len(self.addrs)

    def lookup(self, addrs):
        """Names for a sequence of addresses (UNKNOWN where no symbol covers one)."""
        np = _np()
        addrs = np.asarray(addrs, dtype=np.uint64)
        if not len(self.addrs):
            return [UNKNOWN] * len(addrs)
        idx = np.searchsorted(self.addrs, addrs, side="right") - 1
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        sized = self.ends[safe] > self.addrs[safe]
        ok &= ~sized | (addrs < self.ends[safe])
        return [self._names[self._order[i]] if good else UNKNOWN
                for i, good in zip(safe.tolist(), ok.tolist())]


class _StringTable:
    """Names out of an ELF string table, decoded only when asked for."""

    def __init__(self, strtab, offsets):
        self._strtab = strtab
        self._offsets = offsets
        self._cache = {}

    def __getitem__(self, i):
        name = self._cache.get(i)
        if name is None:
            off = int(self._offsets[i])
            end = self._strtab.find(b"\0", off)
            name = self._cache[i] = self._strtab[off:end if end >= 0 else None].decode(
                errors="replace")
        return name


# --- kernel ---

@lru_cache(maxsize=1)
def kernel_symbols(path="/proc/kallsyms"):
    """The running kernel's text symbols, read once per run."""
    addrs, names = [], []
    with open(path, "rb") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3 or parts[1] not in (b"t", b"T", b"w", b"W"):
                continue
            addr = int(parts[0], 16)
            if addr:
                addrs.append(addr)
                names.append(parts[2].decode(errors="replace"))
    return SymbolTable(addrs, [0] * len(addrs), names)


# --- ELF files ---

def _read_function_symbols(elf):
    """(addrs, sizes, names) of the defined functions in .symtab and .dynsym."""
    np = _np()
    from ..binaries import sym_dtype
    dtype = sym_dtype(elf.elfclass)
    addrs, sizes, names = [], [], []
    for secname in (".symtab", ".dynsym"):
        sec = elf.get_section_by_name(secname)
        if sec is None or sec["sh_type"] == "SHT_NOBITS":
            continue
        strtab = elf.get_section(sec["sh_link"]).data()
        syms = np.frombuffer(sec.data(), dtype=dtype)
        kind = syms["info"] & 0xF
        keep = ((kind == _STT_FUNC) | (kind == _STT_GNU_IFUNC)) & (syms["shndx"] != 0) & (
            syms["value"] != 0)
        syms = syms[keep]
        addrs.append(syms["value"].astype(np.uint64))
        sizes.append(syms["size"].astype(np.uint64))
        names.append(_StringTable(strtab, syms["name"]))
    return addrs, sizes, names


class _Concat:
    """Index over several name tables as if they were one list."""

    def __init__(self, parts):
        self._parts = parts
        self._starts = []
        n = 0
        for p in parts:
            self._starts.append(n)
            n += len(p._offsets)

    def __getitem__(self, i):
        k = bisect.bisect_right(self._starts, i) - 1
        return self._parts[k][i - self._starts[k]]


def load_segments(elf):
    """(p_offset, p_vaddr, p_filesz) of each PT_LOAD segment, sorted."""
    return sorted((seg["p_offset"], seg["p_vaddr"], seg["p_filesz"])
                  for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD")


def offset_to_vaddr(loads, file_offset):
    """The link-time address of a file offset (None when no loaded segment holds it)."""
    for p_offset, p_vaddr, p_filesz in loads:
        if p_offset <= file_offset < p_offset + max(p_filesz, 1):
            return file_offset - p_offset + p_vaddr
    return None


def build_id(elf):
    for sec in elf.iter_sections():
        if sec["sh_type"] == "SHT_NOTE":
            for note in sec.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return note["n_desc"]
    return None


def _debuglink(elf):
    sec = elf.get_section_by_name(".gnu_debuglink")
    if sec is None:
        return None
    data = sec.data()
    return data[:data.index(b"\0")].decode(errors="replace")


def debug_file_candidates(path, build_id, debuglink, debug_dirs=DEBUG_DIRS):
    """Where gdb looks for a separate debug file: by build-id, then by debuglink."""
    if build_id:
        for d in debug_dirs:
            yield os.path.join(d, ".build-id", build_id[:2], build_id[2:] + ".debug")
    if debuglink:
        here = os.path.dirname(os.path.realpath(path))
        yield os.path.join(here, debuglink)
        yield os.path.join(here, ".debug", debuglink)
        for d in debug_dirs:
            yield os.path.join(d, here.lstrip("/"), debuglink)


class ElfSymbols:
    """The function symbols of one ELF file (and of its separate debug file), plus the load
    segments that turn a file offset into the virtual address symbols are given in."""

    def __init__(self, path, debug_dirs=DEBUG_DIRS):
        from elftools.elf.elffile import ELFFile
        self.path = path
        self.debug_path = None
        with open(path, "rb") as f:
            elf = ELFFile(f)
            self.build_id = build_id(elf)
            self.loads = load_segments(elf)
            addrs, sizes, names = _read_function_symbols(elf)
            has_symtab = elf.get_section_by_name(".symtab") is not None
            link = _debuglink(elf)
        if not has_symtab or link:
            for cand in debug_file_candidates(path, self.build_id, link, debug_dirs):
                if cand != path and os.path.isfile(cand):
                    with open(cand, "rb") as f:
                        more = _read_function_symbols(ELFFile(f))
                    self.debug_path = cand
                    for acc, extra in zip((addrs, sizes, names), more):
                        acc.extend(extra)
                    break
        np = _np()
        self.table = SymbolTable(np.concatenate(addrs) if addrs else np.zeros(0, np.uint64),
                                 np.concatenate(sizes) if sizes else np.zeros(0, np.uint64),
                                 _Concat(names))

    def vaddr(self, file_offset):
        return offset_to_vaddr(self.loads, file_offset)

    def lookup_offsets(self, offsets):
        vaddrs = [self.vaddr(o) for o in offsets]
        known = [v for v in vaddrs if v is not None]
        names = iter(self.table.lookup(known))
        return [next(names) if v is not None else UNKNOWN for v in vaddrs]


# --- processes ---

@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    offset: int
    path: str          # "" for anonymous memory
    inode: int

    @property
    def file_backed(self):
        return bool(self.inode) and self.path.startswith("/")

    @property
    def has_image(self):
        """An ELF image is there to read symbols and CFI from: a file, or the vDSO."""
        return self.file_backed or self.path == VDSO


def mapped_file_paths(mapping, pid):
    """Where a mapped file can be opened: its path, then through the process's root (a
    container's file is not at its path on the host); the vDSO's image from vdso_image()."""
    if mapping.path == VDSO:
        image = vdso_image()
        return (image,) if image else ()
    return (mapping.path, f"/proc/{pid}/root{mapping.path}")


def open_mapped(mapping, pid, opener):
    """opener(path) of the first of mapped_file_paths() that opens as ELF; None when none does
    (the file is gone, or not ELF)."""
    from elftools.common.exceptions import ELFError
    for path in mapped_file_paths(mapping, pid):
        try:
            return opener(path)
        except (OSError, ELFError, ValueError, struct.error):
            continue
    return None


@lru_cache(maxsize=None)
def vdso_image():
    """A file holding this kernel's vDSO, copied from this process (every process of the
    architecture maps the same image) into the cache under its content's hash; None when it
    cannot be read or written."""
    import hashlib
    vdso = next((m for m in read_maps(os.getpid(), executable=False) if m.path == VDSO), None)
    if vdso is None:
        return None
    try:
        with open("/proc/self/mem", "rb") as f:
            f.seek(vdso.start)
            data = f.read(vdso.end - vdso.start)
        path = cache_dir(f"vdso-{hashlib.sha1(data).hexdigest()[:16]}.so")
        if not os.path.exists(path):
            write_atomically(path, data)
    except (OSError, ValueError):
        return None
    return path


def read_maps(pid, executable=True):
    """The executable mappings of a process (every one with executable=False), sorted by
    start (empty if it has gone)."""
    out = []
    try:
        with open(f"/proc/{pid}/maps", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 5 or (executable and b"x" not in parts[1]):
            continue
        start, end = (int(x, 16) for x in parts[0].split(b"-"))
        path = parts[5].decode(errors="replace") if len(parts) > 5 else ""
        if path.endswith(" (deleted)"):
            path = path[:-len(" (deleted)")]
        out.append(Mapping(start, end, int(parts[2], 16), path, int(parts[4])))
    out.sort(key=lambda m: m.start)
    return out


class PerfMap:
    """A JIT's symbol file, /tmp/perf-PID.map: 'START SIZE name' per line, in hex."""

    def __init__(self, path):
        addrs, sizes, names = [], [], []
        with open(path, "rb") as f:
            for line in f:
                parts = line.rstrip(b"\n").split(b" ", 2)
                if len(parts) == 3:
                    try:
                        addrs.append(int(parts[0], 16))
                        sizes.append(int(parts[1], 16))
                    except ValueError:
                        continue
                    names.append(parts[2].decode(errors="replace"))
        self.table = SymbolTable(addrs, sizes, names)


class ProcessMaps:
    """What a process had mapped, merged over every snapshot taken during the run, so a
    process that exits (or unmaps a library) before symbolization still resolves."""

    def __init__(self, pid):
        self.pid = pid
        self.mappings = []
        self._starts = []

    def update(self, mappings):
        """Add a newer snapshot: where it overlaps an older mapping (an exec, an munmap and
        mmap), the newer one wins; older mappings elsewhere stay (unmapped libraries)."""
        if not mappings:
            return False
        starts = [m.start for m in mappings]
        kept = []
        for old in self.mappings:
            i = bisect.bisect_left(starts, old.end)  # new mappings starting before old ends
            if i == 0 or mappings[i - 1].end <= old.start:
                kept.append(old)
        self.mappings = sorted(kept + list(mappings), key=lambda m: m.start)
        self._starts = [m.start for m in self.mappings]
        return True

    def find(self, addr):
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.mappings[i].end:
            return self.mappings[i]
        return None


class Symbolizer:
    """Names for kernel and user addresses. Call capture(pid) while a process is alive (the
    profilers do so when its first stack is recorded); user() captures late if it was not."""

    def __init__(self, debug_dirs=DEBUG_DIRS, perf_map_dir="/tmp"):
        self.debug_dirs = tuple(debug_dirs)
        self.perf_map_dir = perf_map_dir
        self._procs = {}
        self._elves = {}       # (path, inode) -> ElfSymbols or None
        self._names = {}       # (path, inode, file offset) -> name
        self._perf_maps = {}   # pid -> PerfMap or None

    # snapshots

    def capture(self, pid):
        """Snapshot the mappings of a live process (merged with earlier snapshots)."""
        proc = self._procs.setdefault(pid, ProcessMaps(pid))
        maps = read_maps(pid)
        if proc.update(maps):
            self._perf_maps.pop(pid, None)  # re-read at symbolization: a JIT appends to it
        return proc

    def refresh(self):
        """Snapshot again every process still alive (it may have exec'd or loaded libraries
        since it was first seen)."""
        for pid in list(self._procs):
            self.capture(pid)

    def process(self, pid):
        """What the process has had mapped (snapshotting it now if it never was)."""
        return self._procs.get(pid) or self.capture(pid)

    def module(self, pid, addr):
        """The file an address is mapped from ("" when anonymous or unknown)."""
        proc = self._procs.get(pid)
        m = proc.find(addr) if proc else None
        return m.path if m else ""

    # kernel

    def kernel(self, addrs):
        return kernel_symbols().lookup(addrs) if len(addrs) else []

    # user

    def _elf(self, mapping, pid):
        key = (mapping.path, mapping.inode)
        if key not in self._elves:
            self._elves[key] = open_mapped(mapping, pid,
                                           lambda path: ElfSymbols(path, self.debug_dirs))
        return self._elves[key]

    def _perf_map(self, pid):
        if pid not in self._perf_maps:
            path = os.path.join(self.perf_map_dir, f"perf-{pid}.map")
            try:
                self._perf_maps[pid] = PerfMap(path)
            except OSError:
                self._perf_maps[pid] = None
        return self._perf_maps[pid]

    def user(self, pid, addrs):
        """Names for addresses of process pid, in order."""
        proc = self.process(pid)
        names = [None] * len(addrs)
        by_file, jit = {}, []
        for i, addr in enumerate(addrs):
            m = proc.find(addr)
            if m is None or not m.has_image:
                jit.append(i)
                continue
            off = addr - m.start + m.offset
            name = self._names.get((m.path, m.inode, off))
            if name is None:
                by_file.setdefault(m, []).append((i, off))
            else:
                names[i] = name
        for m, items in by_file.items():
            elf = self._elf(m, pid)
            offs = [off for _, off in items]
            resolved = elf.lookup_offsets(offs) if elf else [UNKNOWN] * len(offs)
            for (i, off), name in zip(items, resolved):
                names[i] = self._names[(m.path, m.inode, off)] = name
        if jit:
            pm = self._perf_map(pid)
            found = pm.table.lookup([addrs[i] for i in jit]) if pm else [UNKNOWN] * len(jit)
            for i, name in zip(jit, found):
                names[i] = name
        return names
