"""User stacks unwound from a copy of the stack with the objects' call-frame information
(.eh_frame), for code built without frame pointers: perf's --call-graph dwarf design. The kernel
sends each sample's registers and the top USER_STACK_BYTES of its stack
(bpf/include/userstack.bpf.h); here each frame's canonical frame address (CFA) and saved
registers are found from the row of the CFI table that covers its address, and the return
address read from the copy, up to the frame whose CFI marks the return address undefined (glibc's
_start and the thread start in clone3): such a stack is complete.

Tables are built with pyelftools from .eh_frame once per file (seconds for a large binary) and
cached on disk by build-id, so a second run starts at once. The vDSO (clock_gettime and
friends) unwinds from its own .eh_frame, read from this process's copy. x86-64 only.

Where a frame has no CFI (JIT code, an object without .eh_frame) the frame-pointer chain is
followed instead, as far as the copy reaches.
"""
import os
import platform
import struct

from .. import cache
from ..binaries import build_id_of
from .symbols import load_segments, mapped_file_paths, offset_to_vaddr, open_mapped

# What a row of the table says about the frame at its addresses.
CFA_SP, CFA_BP, CFA_PLT, STACK_END, NO_INFO = range(5)
# DWARF register numbers on x86-64
_RBP, _RSP, _RIP = 6, 7, 16
# The CFA of a PLT entry: rsp + 8, plus 8 past the entry's push (at offset THRESHOLD in each
# 16-byte entry). DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_litN; DW_OP_ge;
# DW_OP_lit3; DW_OP_shl; DW_OP_plus, with N the threshold (lit0 is 0x30).
_PLT_EXPR = (0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, None, 0x2a, 0x33, 0x24, 0x22)
_U64 = struct.Struct("<Q")
MAX_FRAMES = 127  # as bpf_get_stackid's PERF_MAX_STACK_DEPTH
CACHE_VERSION = 1


def supported():
    """--unwind dwarf needs the kernel side's x86-64 registers."""
    return platform.machine() == "x86_64"


def _plt_threshold(expr):
    if len(expr) != len(_PLT_EXPR) or not 0x30 <= expr[6] < 0x50:
        return None
    if any(want is not None and got != want for got, want in zip(expr, _PLT_EXPR)):
        return None
    return expr[6] - 0x30


def _row_rule(row):
    """(kind, cfa offset (the threshold for a PLT), offset of the saved rbp from the CFA, 0 when
    rbp is unchanged) of one decoded CFI row."""
    from elftools.dwarf.callframe import RegisterRule
    ra = row.get(_RIP)
    if ra is not None and ra.type == RegisterRule.UNDEFINED:
        return STACK_END, 0, 0
    cfa = row["cfa"]
    bp = row.get(_RBP)
    bp_off = bp.arg if bp is not None and bp.type == RegisterRule.OFFSET else 0
    if cfa.expr is not None:
        threshold = _plt_threshold(cfa.expr)
        return (CFA_PLT, threshold, bp_off) if threshold is not None else (NO_INFO, 0, 0)
    if cfa.reg == _RSP:
        return CFA_SP, cfa.offset, bp_off
    if cfa.reg == _RBP:
        return CFA_BP, cfa.offset, bp_off
    return NO_INFO, 0, 0


class CfiTable:
    """The CFI rows of one ELF file, sorted by link-time address: rule(vaddr) is the row that
    covers vaddr, or None where no FDE does."""

    def __init__(self, pcs, rules, loads):
        import numpy as np
        self.pcs = np.asarray(pcs, dtype=np.uint64)                 # ascending
        self.rules = np.asarray(rules, dtype=np.int64).reshape(-1, 3)  # (kind, cfa_off, bp_off)
        self.loads = [tuple(int(x) for x in load) for load in loads]
        self.skipped = 0        # FDEs pyelftools could not decode (counted, not guessed)

    @classmethod
    def from_elf(cls, elf):
        from elftools.dwarf.callframe import FDE
        rows, skipped = [], 0
        dwarf = elf.get_dwarf_info(follow_links=False) if elf.has_dwarf_info() else None
        entries = dwarf.EH_CFI_entries() if dwarf is not None and dwarf.has_EH_CFI() else []
        for fde in entries:
            if not isinstance(fde, FDE):
                continue
            try:
                table = fde.get_decoded().table
            except Exception:  # an opcode pyelftools does not know: leave the function out
                skipped += 1
                continue
            end = fde["initial_location"] + fde["address_range"]
            # (pc, 0, ...) sorts before a row starting at the same pc: the gap marker at the end
            # of one FDE gives way to the next FDE's first row.
            rows.append((end, 0, (NO_INFO, 0, 0)))
            rows.extend((row["pc"], 1, _row_rule(row)) for row in table)
        rows.sort(key=lambda r: (r[0], r[1]))
        out = cls([r[0] for r in rows], [r[2] for r in rows], load_segments(elf))
        out.skipped = skipped
        return out

    def rule(self, vaddr):
        i = int(self.pcs.searchsorted(vaddr, side="right")) - 1
        if i < 0:
            return None
        rule = tuple(int(x) for x in self.rules[i])
        return None if rule[0] == NO_INFO else rule

    def vaddr(self, file_offset):
        return offset_to_vaddr(self.loads, file_offset)

    # the disk cache: arrays in one .npz per build-id

    def save(self, path):
        import io

        import numpy as np
        data = io.BytesIO()
        np.savez(data, version=CACHE_VERSION, pcs=self.pcs, rules=self.rules,
                 loads=np.array(self.loads, dtype=np.uint64).reshape(-1, 3),
                 skipped=self.skipped)
        cache.write_atomically(path, data.getvalue())

    @classmethod
    def load(cls, path):
        import numpy as np
        with np.load(path) as z:
            if int(z["version"]) != CACHE_VERSION:
                raise ValueError("old cache")
            out = cls(z["pcs"], z["rules"], z["loads"].tolist())
            out.skipped = int(z["skipped"])
        return out


def cached_path(path, cache_dir):
    """Where the table of the ELF file at path is (or would be) cached; None when it cannot
    be (no build-id, no cache)."""
    bid = build_id_of(path) if cache_dir else None
    return os.path.join(cache_dir, f"{bid}.npz") if bid else None


def open_table(path, cache_dir):
    """The CFI table of the ELF file at path: from the cache when its build-id is there (no
    ELF parsing then), else built (and cached). Raises OSError / ELFError for what is not a
    readable ELF file."""
    from elftools.elf.elffile import ELFFile
    cached = cached_path(path, cache_dir)
    if cached and os.path.exists(cached):
        try:
            return CfiTable.load(cached)
        except (OSError, ValueError, KeyError):
            pass  # damaged or from another version: build again
    with open(path, "rb") as f:
        table = CfiTable.from_elf(ELFFile(f))
    if cached:
        try:
            table.save(cached)
        except OSError:
            pass  # a read-only home: unwinding works, the next run builds again
    return table


class Unwinder:
    """Unwinds copied user stacks of the processes a Symbolizer has snapshotted, and counts how
    many were complete (reached a frame whose CFI ends the stack)."""

    def __init__(self, symbolizer, cache_dir=None):
        self.symbolizer = symbolizer
        self.cache_dir = cache.cache_dir("cfi") if cache_dir is None else cache_dir
        self._tables = {}   # (path, inode) -> CfiTable or None
        self._rules = {}    # pid -> {address: (rule, link-time address)}
        self.stacks = 0
        self.complete = 0

    def _table(self, mapping, pid):
        key = (mapping.path, mapping.inode)
        if key not in self._tables:
            self._tables[key] = open_mapped(mapping, pid,
                                            lambda path: open_table(path, self.cache_dir))
        return self._tables[key]

    def prepare(self, pid):
        """Before sampling starts: build the tables pid's files do not have in the cache yet
        (seconds for a large binary, once: samples arriving meanwhile would fill the ring).
        Cached ones are loaded when a sample first needs them, in milliseconds."""
        proc = self.symbolizer.capture(pid)
        for m in proc.mappings:
            if not m.has_image or (m.path, m.inode) in self._tables:
                continue
            paths = [p for p in mapped_file_paths(m, pid) if os.path.exists(p)]
            cached = cached_path(paths[0], self.cache_dir) if paths else None
            if not (cached and os.path.exists(cached)):
                self._table(m, pid)

    def _rule(self, proc, pid, addr):
        """(rule, link-time address) of the code at addr; rule None where no CFI covers it.
        Cached per process and address: the same return addresses recur in every sample."""
        cache = self._rules.setdefault(pid, {})
        found = cache.get(addr)
        if found is None:
            m = proc.find(addr)
            table = self._table(m, pid) if m is not None and m.has_image else None
            vaddr = table.vaddr(addr - m.start + m.offset) if table is not None else None
            found = cache[addr] = ((table.rule(vaddr) if vaddr is not None else None),
                                   addr if vaddr is None else vaddr)
        return found

    def unwind(self, pid, ip, sp, bp, stack):
        """The return addresses of a sample, leaf (ip) first, from its registers and the bytes
        of stack copied from sp."""
        proc = self.symbolizer.process(pid)
        base, top = sp, sp + len(stack) - 8

        def word(addr):
            if addr is None or not base <= addr <= top:
                return None
            return _U64.unpack_from(stack, addr - base)[0]

        pcs, pc, complete = [ip], ip, False
        while len(pcs) < MAX_FRAMES:
            # a return address is past its call: the call itself is what its CFI row covers
            rule, vaddr = self._rule(proc, pid, pc if len(pcs) == 1 else pc - 1)
            if rule is None:  # no CFI: follow the frame pointer, if it points into the copy
                cfa = bp + 16 if bp is not None else None
                ra, bp = word(None if cfa is None else cfa - 8), word(bp)
            else:
                kind, cfa_off, bp_off = rule
                if kind == STACK_END:
                    complete = True
                    break
                if kind == CFA_SP:
                    cfa = sp + cfa_off
                elif kind == CFA_BP:
                    cfa = bp + cfa_off if bp is not None else None
                else:  # CFA_PLT
                    cfa = sp + 8 + (8 if (vaddr & 15) >= cfa_off else 0)
                ra = word(None if cfa is None else cfa - 8)
                if bp_off:
                    bp = word(cfa + bp_off)
            if ra is None or cfa <= sp:  # out of the copy, or not moving up the stack
                break
            if ra == 0:  # some thread starts end the chain with a zero return address
                complete = True
                break
            sp, pc = cfa, ra
            pcs.append(pc)
        self.stacks += 1
        self.complete += complete
        return tuple(pcs)

    def completeness(self):
        return self.complete / self.stacks if self.stacks else None


class UnwoundSamples:
    """profile --unwind dwarf: the events ring's records (4-byte new-process notes, and
    struct user_stack_sample headers each followed by its stack) unwound as they arrive and
    counted per (comm, pid, kernel stack id, user return addresses, Python stack id, Python
    thread id, its hold on the interpreter lock)."""

    def __init__(self, symbolizer, header_dtype):
        from ..report.grouped import comm_of
        self._comm_of = comm_of
        self.symbolizer = symbolizer
        self.unwinder = Unwinder(symbolizer)
        self.dtype = header_dtype
        self.counts = {}

    def add(self, records):
        import numpy as np
        size = self.dtype.itemsize
        samples = []
        for raw in records:
            if len(raw) == 4:
                self.symbolizer.capture(int.from_bytes(raw, "little"))
            else:
                samples.append(raw)
        if not samples:
            return
        # the headers decoded together (one numpy call per batch, not per sample)
        heads = np.frombuffer(b"".join(raw[:size] for raw in samples), self.dtype)
        fields = [heads[name].tolist() for name in ("pid", "ip", "sp", "bp", "size",
                                                   "kern_stack_id", "py_stack_id", "py_tid",
                                                   "py_gil")]
        comms = [self._comm_of(c) for c in heads["comm"]]
        for raw, comm, (pid, ip, sp, bp, n, kid, py, tid, gil) in zip(samples, comms,
                                                                       zip(*fields)):
            pcs = self.unwinder.unwind(pid, ip, sp, bp, raw[size:size + n])
            key = (comm, pid, kid, pcs, py, tid, gil)
            self.counts[key] = self.counts.get(key, 0) + 1

    def summary(self, dropped):
        """What the run unwound, for the report: stacks, the share complete, samples lost."""
        u = self.unwinder
        return {"stacks": u.stacks, "complete": u.complete,
                "complete_pct": round(100 * u.completeness(), 2) if u.stacks else 0.0,
                "dropped": int(dropped)}
