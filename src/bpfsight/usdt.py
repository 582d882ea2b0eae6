"""USDT probes of an ELF file, read from its SystemTap notes (.note.stapsdt) with pyelftools.

Each note (owner "stapsdt", type 3) holds the probe's address, the link-time address of
.stapsdt.base, the semaphore's address (0 if none), then provider, name and the argument
specification as NUL-terminated strings. When the file was prelinked, the addresses move by
the distance .stapsdt.base moved, as in systemtap and BCC."""
import struct
from dataclasses import asdict, dataclass

from .errors import UsageError

NT_STAPSDT = 3


@dataclass(frozen=True)
class Probe:
    binary: str
    provider: str
    name: str
    location: int      # virtual address of the probe's nop
    offset: int        # file offset of the same (what a uprobe attaches to)
    semaphore: int     # virtual address of the is-enabled counter, 0 if none
    args: str          # e.g. "-4@%edi 8@-8(%rbp)"

    def to_dict(self):
        return {**asdict(self), "args": self.args.split()}


def _notes(data, little):
    """(owner, type, desc) of each note in a note section's bytes."""
    fmt = "<III" if little else ">III"
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(fmt, data, pos)
        pos += 12
        owner = data[pos:pos + namesz].rstrip(b"\0").decode(errors="replace")
        pos += (namesz + 3) & ~3
        yield owner, ntype, data[pos:pos + descsz]
        pos += (descsz + 3) & ~3


def _file_offset(elf, vaddr):
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
            return vaddr - seg["p_vaddr"] + seg["p_offset"]
    return vaddr


def read_probes(path):
    """Every USDT probe location in the ELF file at path (a probe used twice is listed twice)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            section = elf.get_section_by_name(".note.stapsdt")
            if section is None:
                return []
            base_sec = elf.get_section_by_name(".stapsdt.base")
            word = "<Q" if elf.little_endian else ">Q"
            if elf.elfclass == 32:
                word = word.replace("Q", "I")
            return [_probe(path, elf, desc, word, base_sec)
                    for owner, ntype, desc in _notes(section.data(), elf.little_endian)
                    if owner == "stapsdt" and ntype == NT_STAPSDT]
    except (OSError, ELFError) as exc:
        raise UsageError(f"cannot read ELF file {path}: {exc}") from None


def _probe(path, elf, desc, word, base_sec):
    size = struct.calcsize(word)
    pc, base, sem = (struct.unpack_from(word, desc, i * size)[0] for i in range(3))
    provider, name, args = (desc[3 * size:].split(b"\0") + [b"", b"", b""])[:3]
    shift = base_sec["sh_addr"] - base if base_sec is not None and base else 0
    location = pc + shift
    return Probe(path, provider.decode(errors="replace"), name.decode(errors="replace"),
                 location, _file_offset(elf, location), sem + shift if sem else 0,
                 args.decode(errors="replace"))


def mapped_files(pid):
    """The distinct files process pid maps, in map order, as the process names them."""
    seen = []
    try:
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                parts = line.rstrip("\n").split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/") and parts[5] not in seen \
                        and not parts[5].endswith(" (deleted)"):
                    seen.append(parts[5])
    except OSError as exc:
        raise UsageError(f"cannot read the maps of PID {pid}: {exc.strerror}") from None
    return seen


def probes_of_pid(pid):
    """The probes of every ELF file process pid maps (read through its root, so a process in
    a container shows its own files); files that are not ELF are passed over."""
    from dataclasses import replace
    found = []
    for path in mapped_files(pid):
        try:
            found += [replace(p, binary=path) for p in read_probes(f"/proc/{pid}/root{path}")]
        except UsageError:
            continue
    return found
