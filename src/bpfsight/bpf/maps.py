"""BPF maps as Python mappings. Keys and values decode as numpy arrays by the dtypes the
object's BTF gives them (or a reader's, checked against it), raw bytes where the map declares
only sizes; numpy is imported only when something is decoded (never on the start-up path).
Bulk reads use the kernel's batch operations where the map type has them."""
import copy
import ctypes
import errno as errno_mod
import os

from ._libbpf import MapBatchOpts, check_int, lib

HASH, ARRAY, PERCPU_HASH, PERCPU_ARRAY = 1, 2, 5, 6
PERF_EVENT_ARRAY, STACK_TRACE, RINGBUF = 4, 7, 27
PERCPU_TYPES = {5, 6, 10, 21}  # PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE
ARRAY_TYPES = {2, 6}
MAP_TYPE_NAMES = {1: "hash", 2: "array", 4: "perf_event_array", 5: "percpu_hash",
                  6: "percpu_array", 7: "stack_trace", 9: "lru_hash", 10: "lru_percpu_hash",
                  27: "ringbuf", 29: "task_storage"}
_ncpus = None
# What a map type without batch operations answers (524 is the kernel's ENOTSUPP).
_NO_BATCH = {errno_mod.EINVAL, errno_mod.EOPNOTSUPP, 524}
_UNSET = object()  # a dtype not worked out yet (None: the map has no type, raw bytes)
BATCH_BYTES = 256 << 10  # keys and values per batch call of read_all (at least one element)


def possible_cpus():
    global _ncpus
    if _ncpus is None:
        _ncpus = check_int(lib().libbpf_num_possible_cpus(), "count possible CPUs")
    return _ncpus


def _dtype(spec):
    """A numpy dtype from anything np.dtype() accepts, or from a function returning one: a tool
    can then type its maps before attaching without importing numpy (~40 ms) first."""
    import numpy as np
    if callable(spec) and not isinstance(spec, type):
        spec = spec()
    return spec if isinstance(spec, np.dtype) else np.dtype(spec)


class Map:
    """One map. Keys and values are typed by the object's BTF where the map declares its types
    (`__type(key, ...)`), by the dtypes a reader gives (`typed`, checked against the BTF), or
    are raw bytes (a map declared by sizes, such as a stack map)."""

    def __init__(self, fd, name, map_type, key_size, value_size, max_entries, owns_fd=False,
                 btf=None, btf_key=0, btf_value=0):
        self.fd = fd
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self._owns_fd = owns_fd
        self._btf, self._btf_key, self._btf_value = btf, btf_key, btf_value
        self._key_spec = self._value_spec = None
        self._key_dtype = self._value_dtype = _UNSET
        self._last_drain = None
        self._bufs = None  # (chunk, keys, values, token in, token out) of batch reads

    @classmethod
    def from_libbpf(cls, ptr, btf=None):
        L = lib()
        return cls(L.bpf_map__fd(ptr), L.bpf_map__name(ptr).decode(), L.bpf_map__type(ptr),
                   L.bpf_map__key_size(ptr), L.bpf_map__value_size(ptr),
                   L.bpf_map__max_entries(ptr), btf=btf,
                   btf_key=L.bpf_map__btf_key_type_id(ptr),
                   btf_value=L.bpf_map__btf_value_type_id(ptr))

    @classmethod
    def create(cls, map_type, key_size, value_size, max_entries, name="bpfsight"):
        fd = lib().bpf_map_create(map_type, name.encode(), key_size, value_size, max_entries, None)
        check_int(fd, f"create {MAP_TYPE_NAMES.get(map_type, map_type)} map")
        return cls(fd, name, map_type, key_size, value_size, max_entries, owns_fd=True)

    def typed(self, key=None, value=None):
        """A view of this map whose keys/values decode with the given dtypes (anything
        np.dtype() accepts, or a function returning one, so a tool can name its types before
        attaching without importing numpy); where the map has BTF types, each given dtype is
        checked against them when first used, naming the first field that differs. The map
        itself keeps its own types; a view keeps its own interval state (`drain`)."""
        view = copy.copy(self)
        view._owns_fd = False
        view._key_spec = key if key is not None else self._key_spec
        view._value_spec = value if value is not None else self._value_spec
        view._key_dtype = view._value_dtype = _UNSET
        view._last_drain = None
        view._bufs = None
        return view

    # --- sizes and codecs ---

    @property
    def percpu(self):
        return self.type in PERCPU_TYPES

    @property
    def _value_stride(self):
        return (self.value_size + 7) & ~7 if self.percpu else self.value_size

    @property
    def _value_buf_size(self):
        return self._value_stride * possible_cpus() if self.percpu else self.value_size

    def _derived(self, type_id, size):
        """The dtype the object's BTF gives this map's key or value, or None."""
        if not (self._btf and type_id):
            return None
        from .btf import BTFTypeError
        try:
            dt = self._btf.dtype(type_id)
        except BTFTypeError:
            return None
        return dt if dt.itemsize == size else None

    def _resolve(self, spec, type_id, size, what):
        derived = self._derived(type_id, size)
        if spec is None:
            return derived
        dt = _dtype(spec)
        if dt.itemsize != size:
            raise ValueError(f"map {self.name}: {what} dtype is {dt.itemsize} bytes, "
                             f"map has {size}")
        if derived is not None:
            from .btf import check_layout
            check_layout(dt, derived, f"map {self.name} {what}")
        return dt

    def key_dtype(self):
        if self._key_dtype is _UNSET:
            self._key_dtype = self._resolve(self._key_spec, self._btf_key, self.key_size, "key")
        return self._key_dtype

    def value_dtype(self):
        """dtype of one value; for per-CPU maps, of one CPU's slot (padded to 8 bytes)."""
        if self._value_dtype is _UNSET:
            import numpy as np
            dt = self._resolve(self._value_spec, self._btf_value, self.value_size, "value")
            if dt is not None and self.percpu and dt.itemsize != self._value_stride:
                # each CPU's slot is padded to 8 bytes; decode_values unwraps field "v"
                dt = np.dtype({"names": ["v"], "formats": [dt], "itemsize": self._value_stride})
            self._value_dtype = dt
        return self._value_dtype

    def _padded(self):
        """Per-CPU values wrapped in a padded slot (see value_dtype)."""
        dt = self.value_dtype()
        return dt is not None and dt.names == ("v",) and dt.itemsize != self.value_size

    def encode_key(self, key):
        if isinstance(key, (bytes, bytearray)):
            data = bytes(key)
        elif isinstance(key, int) and self._key_spec is None:
            # an integer key, encoded without numpy (its import would land on the start-up
            # path of a tool that fills a map before attaching)
            data = key.to_bytes(self.key_size, "little", signed=key < 0)
        else:
            import numpy as np
            data = np.array(key, dtype=self.key_dtype()).tobytes()
        if len(data) != self.key_size:
            raise ValueError(f"map {self.name}: key is {len(data)} bytes, needs {self.key_size}")
        return data

    def decode_keys(self, raw, count):
        import numpy as np
        dt = self.key_dtype()
        return np.frombuffer(raw, dtype=dt, count=count) if dt is not None else [
            bytes(raw[i * self.key_size:(i + 1) * self.key_size]) for i in range(count)]

    def decode_values(self, raw, count):
        """Values as a numpy array: shape (count,) or, per-CPU, (count, ncpus)."""
        import numpy as np
        dt = self.value_dtype()
        if dt is None:
            dt = np.dtype((np.void, self._value_stride))
        arr = np.frombuffer(raw, dtype=dt, count=count * (possible_cpus() if self.percpu else 1))
        if self.percpu:
            arr = arr.reshape(count, possible_cpus())
            if self._padded():
                arr = arr["v"]
        return arr

    # --- single elements ---

    def lookup_bytes(self, key_bytes):
        val = ctypes.create_string_buffer(self._value_buf_size)
        ret = lib().bpf_map_lookup_elem(self.fd, key_bytes, val)
        if ret == -errno_mod.ENOENT:
            return None
        check_int(ret, f"lookup in map {self.name}")
        return val.raw

    def __getitem__(self, key):
        raw = self.lookup_bytes(self.encode_key(key))
        if raw is None:
            raise KeyError(key)
        if self.value_dtype() is None and not self.percpu:
            return raw
        return self.decode_values(raw, 1)[0]

    def sum_cpus(self, key=0):
        """One element of a per-CPU map summed over CPUs: an int, or {field: int} for a
        struct value; 0 (or zeros) when the key is absent. For counters such as a one-slot
        per-CPU array of drops."""
        import numpy as np
        raw = self.lookup_bytes(self.encode_key(key))
        dt = self.value_dtype()
        if dt is None:
            return sum(np.frombuffer(raw, dtype="<u8").tolist()) if raw else 0
        row = self.decode_values(raw, 1)[0] if raw else np.zeros(1, dtype=dt)
        if row.dtype.names:
            return {name: int(row[name].sum()) for name in row.dtype.names}
        return int(row.sum())

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key, value):
        if not isinstance(value, (bytes, bytearray)):
            import numpy as np
            value = np.array(value, dtype=self.value_dtype()).tobytes()
        check_int(lib().bpf_map_update_elem(self.fd, self.encode_key(key), bytes(value), 0),
                  f"update map {self.name}")

    def __delitem__(self, key):
        ret = lib().bpf_map_delete_elem(self.fd, self.encode_key(key))
        if ret == -errno_mod.ENOENT:
            raise KeyError(key)
        check_int(ret, f"delete from map {self.name}")

    def raw_keys(self):
        """Every key as bytes (get_next_key walk; a concurrent delete may skip a key)."""
        prev, out = None, []
        cur = ctypes.create_string_buffer(self.key_size)
        while lib().bpf_map_get_next_key(self.fd, prev, cur) == 0:
            out.append(cur.raw)
            prev = ctypes.create_string_buffer(cur.raw, self.key_size)
        return out

    def __iter__(self):
        raws = self.raw_keys()
        if self.key_dtype() is None:
            return iter(int.from_bytes(k, "little") if self.type in ARRAY_TYPES else k
                        for k in raws)
        return iter(self.decode_keys(b"".join(raws), len(raws)))

    def __len__(self):
        return len(self.raw_keys())

    # --- bulk ---

    def read_all(self, delete=False):
        """(keys, values) of every element in as few syscalls as the kernel allows; with
        delete=True the elements read are removed (interval reset without losing updates
        that land between the read and a separate clear)."""
        return self.decode_all(self.read_raw(delete))

    def read_raw(self, delete=False):
        """read_all's (key bytes, value bytes, count), undecoded: for a reader that compares
        readings before it decodes them."""
        try:
            return self._batch(delete)
        except OSError as exc:
            if exc.errno not in _NO_BATCH:
                raise
            return self._walk(delete)

    def decode_all(self, raw):
        """(keys, values) of a read_raw reading."""
        keys, values, count = raw
        return self.decode_keys(keys, count), self.decode_values(values, count)

    def drain(self):
        """(keys, values) of what was added since the previous drain, for per-interval output.
        A hash is read and emptied in one batch. Array elements cannot be deleted, and zeroing
        them after a read would lose what lands in between, so an array is read whole and the
        previous reading subtracted from its integer fields; elements that did not change are
        left out."""
        if self.type not in ARRAY_TYPES:
            return self.read_all(delete=True)
        import numpy as np
        keys, values = self.read_all()
        now = values.copy()
        last = self._last_drain if self._last_drain is not None else np.zeros_like(now)
        self._last_drain = now
        changed = (now.view(np.uint8).reshape(len(now), -1)
                   != last.view(np.uint8).reshape(len(last), -1)).any(axis=1)
        values = now.copy()
        _subtract_counts(values, last)
        return keys[changed], values[changed]

    def _batch(self, delete):
        """Chunks of up to BATCH_BYTES through one buffer pair, kept with the map: a buffer for
        every possible element, made and zero-filled on each read, cost a scrape of the
        exporter more than the lookups (megabytes for a few dozen keys)."""
        fn = lib().bpf_map_lookup_and_delete_batch if delete else lib().bpf_map_lookup_batch
        n = max(self.max_entries, 1)
        if self._bufs is None:
            self._buffers(max(1, min(n, BATCH_BYTES // (self.key_size + self._value_buf_size))))
        chunk, keys, values, token_in, token_out = self._bufs
        opts = MapBatchOpts(sz=ctypes.sizeof(MapBatchOpts))
        key_parts, value_parts, total, first = [], [], 0, True
        while True:  # to ENOENT, the walk's end: each call moves it on by a bucket or more
            # a whole buffer each time: a hash bucket comes whole or not at all, so capping the
            # count at what is left to max_entries refused for ever (ENOSPC) a bucket larger
            # than that, which a map that gains keys ahead of the walk as it is read can have,
            # and the buffer doubled until MemoryError; nor does the walk end at max_entries
            # elements: such a map gives more, and the keys at its end were left unread
            count = ctypes.c_uint32(chunk)
            ret = fn(self.fd, None if first else token_in, token_out, keys, values,
                     ctypes.byref(count), ctypes.byref(opts))
            if ret == -errno_mod.ENOSPC and not count.value and chunk < n:  # bucket > chunk
                chunk, keys, values, _, _ = self._buffers(min(chunk * 2, n))
                continue
            total += count.value
            key_parts.append(ctypes.string_at(keys, count.value * self.key_size))
            value_parts.append(ctypes.string_at(values, count.value * self._value_buf_size))
            if ret == -errno_mod.ENOENT:
                break
            check_int(ret, f"batch read of map {self.name}")
            ctypes.memmove(token_in, token_out, len(token_out))
            first = False
        return b"".join(key_parts), b"".join(value_parts), total

    def _buffers(self, chunk):
        """(Re)make the buffers for chunk elements; the batch tokens are kept."""
        token = max(self.key_size, 8)
        tokens = self._bufs[3:] if self._bufs else (ctypes.create_string_buffer(token),
                                                   ctypes.create_string_buffer(token))
        self._bufs = (chunk, ctypes.create_string_buffer(self.key_size * chunk),
                      ctypes.create_string_buffer(self._value_buf_size * chunk)) + tokens
        return self._bufs

    def _walk(self, delete):
        keys = self.raw_keys()
        vals = []
        kept = []
        for k in keys:
            v = self.lookup_bytes(k)
            if v is None:
                continue
            kept.append(k)
            vals.append(v)
            if delete and self.type not in ARRAY_TYPES:
                lib().bpf_map_delete_elem(self.fd, k)
        if delete and self.type in ARRAY_TYPES:
            self.clear()
        return b"".join(kept), b"".join(vals), len(kept)

    def items(self):
        keys, values = self.read_all()
        return list(zip(keys, values))

    def clear(self):
        if self.type in ARRAY_TYPES:
            zero = bytes(self._value_buf_size)
            for k in range(self.max_entries):
                lib().bpf_map_update_elem(self.fd, k.to_bytes(4, "little"), zero, 0)
            return
        for k in self.raw_keys():
            lib().bpf_map_delete_elem(self.fd, k)

    def release(self):
        if self._owns_fd and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1

    def __repr__(self):
        return (f"Map({self.name!r}, {MAP_TYPE_NAMES.get(self.type, self.type)}, "
                f"key={self.key_size}B, value={self.value_size}B, max={self.max_entries})")


def _subtract_counts(values, last):
    """values -= last, in place, for every integer field (however nested); names and other
    non-counter fields keep their current value."""
    names = values.dtype.names
    if names is None:
        base = values.dtype.subdtype[0] if values.dtype.subdtype else values.dtype
        if base.kind in "iu":
            values -= last
        return
    for name in names:
        _subtract_counts(values[name], last[name])
