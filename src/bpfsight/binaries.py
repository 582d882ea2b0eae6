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


def symbol_offsets(path, names, kind="STT_OBJECT"):
    """{name: file offset} of the symbols of that kind (STT_FUNC, STT_OBJECT) among `names`
    that the ELF file defines with file contents (a .bss variable has none)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    wanted, found = set(names), {}
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            loads = [(s["p_vaddr"], s["p_offset"], s["p_filesz"]) for s in elf.iter_segments()
                     if s["p_type"] == "PT_LOAD"]
            for secname in (".dynsym", ".symtab"):  # .symtab: only for a static build
                sec = None if found else elf.get_section_by_name(secname)
                for sym in (sec.iter_symbols() if sec is not None else ()):
                    if (sym.name in wanted and sym.name not in found
                            and sym["st_info"]["type"] == kind
                            and sym["st_shndx"] != "SHN_UNDEF" and sym["st_value"]):
                        found[sym.name] = sym["st_value"]
    except (OSError, ELFError) as exc:
        raise UsageError(f"cannot read ELF file {path!r}: {exc}") from None
    return {name: vaddr - vbase + obase for name, vaddr in found.items()
            for vbase, obase, size in loads if vbase <= vaddr < vbase + size}
