"""Finding the ELF file behind a name the way BCC does: a path as given; a library name ("c",
"pthread", "libssl.so.3") in the target process's /proc/PID/maps, then in the ld.so cache
(/etc/ld.so.cache, what `ldconfig -p` prints), keeping only files of this machine's architecture;
else an executable on PATH."""
import os
import re
import shutil
import struct
import sys

from .errors import UsageError

LD_CACHE = "/etc/ld.so.cache"
_LD_CACHE_MAGIC = b"glibc-ld.so.cache1.1"  # glibc >= 2.32 writes only this format
_LD_CACHE_HEADER = 48  # magic, nlibs, len_strings, flags + pad, extension offset, unused[3]
_LD_CACHE_ENTRY = struct.Struct("=iIIIQ")  # flags, key, value (file offsets), osversion, hwcap


def _elf_ident(path):
    """(class, machine) of an ELF file, or None when it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    order = "little" if head[5] == 1 else "big"
    return head[4], int.from_bytes(head[18:20], order)


def _native(path):
    return _elf_ident(path) is not None and _elf_ident(path) == _elf_ident("/proc/self/exe")


def _lib_pattern(name):
    """A regex for the file names a library name stands for: "c" -> libc.so*, libc-2.36.so."""
    base = name if name.startswith("lib") else f"lib{name}"
    if ".so" in base:
        return re.compile(re.escape(base) + r"$")
    return re.compile(re.escape(base) + r"(\.so(\.[\d.]+)?|-[\d.]+\.so)$")


def _from_maps(pattern, pid):
    try:
        with open(f"/proc/{pid}/maps") as maps:
            paths = [line.split(None, 5)[5].strip() for line in maps if len(line.split()) >= 6]
    except OSError:
        return None
    # seen through the process's root, so a library inside a container is the one probed
    return next((f"/proc/{pid}/root{p}" for p in paths if pattern.search(os.path.basename(p))
                 and os.path.exists(f"/proc/{pid}/root{p}")), None)


def _ld_cache():
    """[(library name, path)] read from the ld.so cache itself (running `ldconfig -p` costs
    ~10 ms of start-up); None when it is missing or in a format we do not read."""
    try:
        with open(LD_CACHE, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data.startswith(_LD_CACHE_MAGIC) or len(data) < _LD_CACHE_HEADER:
        return None
    nlibs = int.from_bytes(data[20:24], sys.byteorder)
    end = _LD_CACHE_HEADER + nlibs * _LD_CACHE_ENTRY.size
    if end > len(data):
        return None  # truncated: ldconfig -p says what it can

    def string(offset):
        return data[offset:data.index(b"\0", offset)].decode(errors="replace")

    try:
        return [(string(key), string(value)) for _, key, value, _, _ in
                _LD_CACHE_ENTRY.iter_unpack(data[_LD_CACHE_HEADER:end])]
    except ValueError:  # a string offset outside the file
        return None


def _ldconfig_p():
    import subprocess
    try:
        text = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                              check=False).stdout
    except OSError:
        return []
    pairs = (line.strip().partition(" => ") for line in text.splitlines())
    return [(name.split()[0], path) for name, sep, path in pairs if sep]


def _from_ldconfig(pattern):
    entries = _ld_cache()
    for name, path in (entries if entries is not None else _ldconfig_p()):
        if pattern.search(name) and _native(path):
            return path
    return None


def resolve_binary(name, pid=None):
    """Absolute path of the ELF file `name` refers to (see module doc); UsageError if none."""
    if "/" in name:
        if not os.path.isfile(name):
            raise UsageError(f"no such file {name!r}")
        return os.path.realpath(name)
    pattern = _lib_pattern(name)
    path = (pid and _from_maps(pattern, pid)) or _from_ldconfig(pattern) or shutil.which(name)
    if not path:
        raise UsageError(f"cannot find library or executable {name!r} "
                         "(give its path, or -p PID of a process that maps it)")
    return os.path.realpath(path)


def function_offsets(path, names):
    """{name: file offset} of the functions among `names` that the ELF file defines in its
    .dynsym or .symtab, for attaching uprobes by offset: one read of the file instead of
    libbpf parsing it again for every symbol (a CUDA driver library is tens of MB)."""
    return symbol_offsets(path, names, "STT_FUNC")


_STT = {"STT_OBJECT": 1, "STT_FUNC": 2}


def sym_dtype(elfclass):
    """An ELF symbol table entry (Elf32_Sym / Elf64_Sym) as a numpy dtype."""
    import numpy as np
    if elfclass == 64:
        return np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                         ("value", "<u8"), ("size", "<u8")])
    return np.dtype([("name", "<u4"), ("value", "<u4"), ("size", "<u4"), ("info", "u1"),
                     ("other", "u1"), ("shndx", "<u2")])


def _name_offsets(strtab, name):
    """Every offset in a string table where `name` starts and ends at a NUL (a linker may
    store it as the tail of a longer string)."""
    want, out, at = name.encode() + b"\0", [], 0
    while True:
        at = strtab.find(want, at)
        if at < 0:
            return out
        out.append(at)
        at += 1


_SYM64 = struct.Struct("<IBBHQQ")  # Elf64_Sym: name, info, other, shndx, value, size


class _Elf64:
    """Just enough of a 64-bit little-endian ELF file for symbol lookups: its section and
    program headers, read with struct (importing pyelftools alone takes ~75 ms, most of a
    tool's start)."""

    def __init__(self, f):
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            raise ValueError("not a 64-bit little-endian ELF file")
        phoff, shoff = struct.unpack_from("<QQ", head, 0x20)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", head, 0x36)
        self._f = f
        self.loads = []
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 1:  # PT_LOAD
                self.loads.append((p_vaddr, p_offset, p_filesz))
        f.seek(shoff)
        table = f.read(shnum * shentsize)
        self.sections = [struct.unpack_from("<IIQQQQII", table, i * shentsize)
                         for i in range(shnum)]
        names = self.data(shstrndx)
        self.by_name = {names[n:names.index(b"\0", n)].decode(errors="replace"): i
                        for i, (n, *_) in enumerate(self.sections)}

    def data(self, index):
        _, sh_type, _, _, offset, size, _, _ = self.sections[index]
        if sh_type == 8:  # SHT_NOBITS
            return b""
        self._f.seek(offset)
        return self._f.read(size)

    def build_id(self):
        """The GNU build-id as hex, or None."""
        i = self.by_name.get(".note.gnu.build-id")
        note = self.data(i) if i is not None else b""
        if len(note) < 16:
            return None
        namesz, descsz, kind = struct.unpack_from("<III", note)
        start = 12 + ((namesz + 3) & ~3)
        return note[start:start + descsz].hex() if kind == 3 else None  # NT_GNU_BUILD_ID

    def symbols(self, secname):
        """(symbol table bytes, its string table bytes), or None."""
        i = self.by_name.get(secname)
        if i is None:
            return None
        return self.data(i), self.data(self.sections[i][6])  # sh_link: its strings


def build_id_of(path):
    """The GNU build-id of a 64-bit ELF file as hex; None without one (or for another kind
    of file)."""
    try:
        with open(path, "rb") as f:
            return _Elf64(f).build_id()
    except (OSError, ValueError, struct.error):
        return None


def function_names(path):
    """The names of the functions an ELF file defines (.dynsym, else .symtab), for matching
    wildcards (funccount 'c:str*')."""
    names = set()
    try:
        with open(path, "rb") as f:
            elf = _Elf64(f)
            for secname in (".dynsym", ".symtab"):
                tables = elf.symbols(secname)
                if not tables:
                    continue
                syms, strtab = tables
                for n, info, _, shndx, value, _ in _SYM64.iter_unpack(syms):
                    if info & 0xF == _STT["STT_FUNC"] and shndx != 0 and value:
                        names.add(strtab[n:strtab.index(b"\0", n)].decode(errors="replace"))
    except (OSError, ValueError, struct.error) as exc:
        raise UsageError(f"cannot read ELF file {path!r}: {exc}") from None
    return sorted(names)


def symbol_offsets(path, names, kind="STT_OBJECT"):
    """{name: file offset} of the symbols of that kind (STT_FUNC, STT_OBJECT) among `names`
    that the ELF file defines with file contents (a .bss variable has none). Names are found
    in the string table first and the symbol table is scanned with struct, without building
    a symbol object per entry (pyelftools' iter_symbols over a python binary's 2,000 dynamic
    symbols took ~150 ms of a profiler's start)."""
    found = {}
    try:
        with open(path, "rb") as f:
            elf = _Elf64(f)
            for secname in (".dynsym", ".symtab"):  # .symtab: only for a static build
                tables = None if found else elf.symbols(secname)
                if not tables:
                    continue
                syms, strtab = tables
                wanted = {at: name for name in names for at in _name_offsets(strtab, name)}
                for n, info, _, shndx, value, _ in _SYM64.iter_unpack(syms):
                    name = wanted.get(n)
                    if (name is not None and name not in found and info & 0xF == _STT[kind]
                            and shndx != 0 and value):
                        found[name] = value
    except (OSError, ValueError, struct.error) as exc:
        raise UsageError(f"cannot read ELF file {path!r}: {exc}") from None
    return {name: vaddr - vbase + obase for name, vaddr in found.items()
            for vbase, obase, size in elf.loads if vbase <= vaddr < vbase + size}