"""Types from the source of truth: numpy dtypes built from an object's BTF, so maps and records
are decoded by the layout the compiler wrote, not by a copy of it kept by hand.

C types map as a C programmer reads them: integers and enums by size and sign, `char x[N]` as
bytes `SN`, other arrays as sub-arrays, structs and unions as structured dtypes at the
compiler's offsets (union members overlap; an anonymous member's fields are lifted into the
parent). Bitfields have no numpy form: they are left out and their bytes read as padding, so a
reader that needs one declares an override (see `check_layout`).
"""
import ctypes

from ._libbpf import BtfType, BtfVarSecinfo, lib

(KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD, KIND_TYPEDEF,
 KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC,
 KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64) = range(1, 20)
_QUALIFIERS = {KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG}
_INT_SIGNED, _INT_CHAR, _INT_BOOL = 1, 2, 4
_CHAR_NAMES = {"char", "signed char"}  # text; unsigned char arrays are bytes (addresses)


class BTFTypeError(ValueError):
    """A BTF type with no numpy form (a function, a forward declaration, void)."""


class _Array(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("index_type", ctypes.c_uint32),
                ("nelems", ctypes.c_uint32)]


class _Member(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32),
                ("offset", ctypes.c_uint32)]


class BTF:
    """Read access to one BTF blob (an object's or the kernel's); owned by whoever made it."""

    def __init__(self, ptr):
        self._ptr = ptr
        self._dtypes = {}

    # --- raw access ---

    def close(self):
        """Forget the blob (its owner is freeing it); dtypes already built stay usable."""
        self._ptr = None

    def _type(self, type_id):
        if not self._ptr:
            raise BTFTypeError("the BTF was freed with its object")
        t = lib().btf__type_by_id(self._ptr, type_id)
        if not t:
            raise BTFTypeError(f"BTF has no type id {type_id}")
        return t.contents

    def _trailer(self, t, entry, count):
        """The kind-specific records that follow a btf_type (members, array info, ...)."""
        return ctypes.cast(ctypes.addressof(t) + ctypes.sizeof(BtfType),
                           ctypes.POINTER(entry * count)).contents

    def name(self, type_id):
        return lib().btf__name_by_offset(self._ptr, self._type(type_id).name_off).decode()

    @staticmethod
    def kind(t):
        return (t.info >> 24) & 0x1F

    def find(self, name, kind=KIND_STRUCT):
        """Type id of the named type of that kind, or None."""
        type_id = lib().btf__find_by_name_kind(self._ptr, name.encode(), kind)
        return type_id if type_id > 0 else None

    def resolve(self, type_id):
        """Past typedefs and qualifiers to the type that has a layout."""
        while type_id and self.kind(self._type(type_id)) in _QUALIFIERS:
            type_id = self._type(type_id).size_or_type
        return type_id

    def datasec(self, section):
        """{variable: (offset, size, type id)} of a data section (.rodata, .bss, .data)."""
        sec_id = self.find(section, KIND_DATASEC)
        if sec_id is None:
            return {}
        sec = self._type(sec_id)
        out = {}
        for info in self._trailer(sec, BtfVarSecinfo, sec.info & 0xFFFF):
            out[self.name(info.type)] = (info.offset, info.size, self._type(info.type).size_or_type)
        return out

    # --- dtypes ---

    def dtype(self, type_id):
        """The numpy dtype of BTF type `type_id` (cached per id)."""
        if type_id not in self._dtypes:
            self._dtypes[type_id] = self._build(type_id)
        return self._dtypes[type_id]

    def struct_dtype(self, name):
        """dtype of `struct name` (or a union, or a typedef of either), e.g. a ring buffer's
        record type; None when the object has no such type."""
        for kind in (KIND_STRUCT, KIND_UNION, KIND_TYPEDEF):
            type_id = self.find(name, kind)
            if type_id is not None:
                return self.dtype(type_id)
        return None

    def variable_dtype(self, name, pointee=True):
        """dtype of global variable `name`'s type (of what it points to, for a pointer);
        None when there is no such variable."""
        var_id = self.find(name, KIND_VAR)
        if var_id is None:
            return None
        type_id = self.resolve(self._type(var_id).size_or_type)
        if pointee and self.kind(self._type(type_id)) == KIND_PTR:
            type_id = self._type(type_id).size_or_type
        return self.dtype(type_id)

    def _build(self, type_id):
        import numpy as np
        type_id = self.resolve(type_id)
        if not type_id:
            raise BTFTypeError("void has no layout")
        t = self._type(type_id)
        kind = self.kind(t)
        if kind == KIND_INT:
            encoding = (self._trailer(t, ctypes.c_uint32, 1)[0] >> 24) & 0xF
            if encoding & _INT_BOOL:
                return np.dtype("?")
            if t.size_or_type > 8:
                return np.dtype((np.void, t.size_or_type))
            return np.dtype(f"<{'i' if encoding & _INT_SIGNED else 'u'}{t.size_or_type}")
        if kind in (KIND_ENUM, KIND_ENUM64):
            signed = bool(t.info >> 31)
            return np.dtype(f"<{'i' if signed else 'u'}{t.size_or_type}")
        if kind == KIND_FLOAT:
            return np.dtype(f"<f{t.size_or_type}")
        if kind == KIND_PTR:
            return np.dtype("<u8")  # BPF's pointers are 64-bit
        if kind == KIND_ARRAY:
            arr = self._trailer(t, _Array, 1)[0]
            elem_id = self.resolve(arr.type)
            elem = self._type(elem_id)
            if (self.kind(elem) == KIND_INT and elem.size_or_type == 1
                    and self.name(elem_id) in _CHAR_NAMES):
                return np.dtype(f"S{arr.nelems}")
            return np.dtype((self.dtype(elem_id), (arr.nelems,)))
        if kind in (KIND_STRUCT, KIND_UNION):
            names, formats, offsets = [], [], []
            for fname, ftype, offset in self._fields(t):
                if fname not in names:
                    names.append(fname)
                    formats.append(ftype)
                    offsets.append(offset)
            return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                             "itemsize": t.size_or_type})
        raise BTFTypeError(f"BTF kind {kind} ({self.name(type_id) or 'anonymous'}) has no layout")

    def _fields(self, t, base=0):
        """(name, dtype, byte offset) of each member, anonymous members flattened; bitfields
        are left out (their bytes stay padding)."""
        kflag = bool(t.info >> 31)
        for m in self._trailer(t, _Member, t.info & 0xFFFF):
            bit_offset = m.offset & 0xFFFFFF if kflag else m.offset
            bitfield = (m.offset >> 24) if kflag else 0
            member_id = self.resolve(m.type)
            member = self._type(member_id)
            if not bitfield and self.kind(member) == KIND_INT:
                bitfield = (self._trailer(member, ctypes.c_uint32, 1)[0] & 0xFF)
                bitfield = bitfield if bitfield != member.size_or_type * 8 else 0
            if bitfield or bit_offset % 8:
                continue
            offset = base + bit_offset // 8
            name = lib().btf__name_by_offset(self._ptr, m.name_off).decode()
            if not name and self.kind(member) in (KIND_STRUCT, KIND_UNION):
                yield from self._fields(member, offset)
                continue
            dt = self.dtype(member_id)
            if dt.itemsize:  # a flexible array member takes no room
                yield name, dt, offset


def check_layout(declared, derived, what):
    """`declared` (a hand-written dtype, kept where BTF cannot say it) against `derived` (the
    BTF's): every declared field must sit where the compiler put it, with the same size.
    Returns `declared`; raises ValueError naming the first field that differs."""
    if declared.itemsize != derived.itemsize:
        raise ValueError(f"{what}: {declared.itemsize} bytes declared, the BTF says "
                         f"{derived.itemsize}")
    for name in declared.names or ():
        dt, offset = declared.fields[name][:2]
        if derived.names is None or name not in derived.fields:
            if derived.names and not _overlaps(derived, offset, dt.itemsize):
                continue  # a name for the compiler's padding
            known = ", ".join(derived.names or ()) or "no fields"
            raise ValueError(f"{what}: field {name!r} is not in the BTF type ({known})")
        bdt, boffset = derived.fields[name][:2]
        if offset != boffset or dt.itemsize != bdt.itemsize:
            raise ValueError(f"{what}: field {name!r} declared at offset {offset}, "
                             f"{dt.itemsize} bytes; the BTF says offset {boffset}, "
                             f"{bdt.itemsize} bytes")
        if dt.names and bdt.names:
            check_layout(dt, bdt, f"{what}.{name}")
    return declared


def _overlaps(dt, offset, size):
    return any(o < offset + size and offset < o + f.itemsize
               for f, o, *_ in dt.fields.values())
