"""pprof output (gzipped perftools.profiles.Profile, as `go tool pprof`, Pyroscope and Parca
read it). The schema is github.com/google/pprof/proto/profile.proto, declared here in code so
no protoc step is needed; `profile_message_class()` is also what tests parse with."""
import gzip
from functools import lru_cache

# (message, [(field, number, type, label, message type)]) from profile.proto
_I64, _U64, _BOOL, _MSG = "int64", "uint64", "bool", "message"
_SCHEMA = [
    ("Profile", [("sample_type", 1, _MSG, "rep", "ValueType"), ("sample", 2, _MSG, "rep", "Sample"),
                 ("mapping", 3, _MSG, "rep", "Mapping"), ("location", 4, _MSG, "rep", "Location"),
                 ("function", 5, _MSG, "rep", "Function"), ("string_table", 6, "string", "rep", None),
                 ("drop_frames", 7, _I64, "opt", None), ("keep_frames", 8, _I64, "opt", None),
                 ("time_nanos", 9, _I64, "opt", None), ("duration_nanos", 10, _I64, "opt", None),
                 ("period_type", 11, _MSG, "opt", "ValueType"), ("period", 12, _I64, "opt", None),
                 ("comment", 13, _I64, "rep", None), ("default_sample_type", 14, _I64, "opt", None)]),
    ("ValueType", [("type", 1, _I64, "opt", None), ("unit", 2, _I64, "opt", None)]),
    ("Sample", [("location_id", 1, _U64, "rep", None), ("value", 2, _I64, "rep", None),
                ("label", 3, _MSG, "rep", "Label")]),
    ("Label", [("key", 1, _I64, "opt", None), ("str", 2, _I64, "opt", None),
               ("num", 3, _I64, "opt", None), ("num_unit", 4, _I64, "opt", None)]),
    ("Mapping", [("id", 1, _U64, "opt", None), ("memory_start", 2, _U64, "opt", None),
                 ("memory_limit", 3, _U64, "opt", None), ("file_offset", 4, _U64, "opt", None),
                 ("filename", 5, _I64, "opt", None), ("build_id", 6, _I64, "opt", None),
                 ("has_functions", 7, _BOOL, "opt", None), ("has_filenames", 8, _BOOL, "opt", None),
                 ("has_line_numbers", 9, _BOOL, "opt", None),
                 ("has_inline_frames", 10, _BOOL, "opt", None)]),
    ("Location", [("id", 1, _U64, "opt", None), ("mapping_id", 2, _U64, "opt", None),
                  ("address", 3, _U64, "opt", None), ("line", 4, _MSG, "rep", "Line"),
                  ("is_folded", 5, _BOOL, "opt", None)]),
    ("Line", [("function_id", 1, _U64, "opt", None), ("line", 2, _I64, "opt", None)]),
    ("Function", [("id", 1, _U64, "opt", None), ("name", 2, _I64, "opt", None),
                  ("system_name", 3, _I64, "opt", None), ("filename", 4, _I64, "opt", None),
                  ("start_line", 5, _I64, "opt", None)]),
]
PACKAGE = "perftools.profiles"


@lru_cache(maxsize=1)
def profile_message_class():
    """The Profile message class, built from the schema above."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    F = descriptor_pb2.FieldDescriptorProto
    types = {_I64: F.TYPE_INT64, _U64: F.TYPE_UINT64, _BOOL: F.TYPE_BOOL, _MSG: F.TYPE_MESSAGE,
             "string": F.TYPE_STRING}
    fdp = descriptor_pb2.FileDescriptorProto(name="bpfsight_profile.proto", package=PACKAGE,
                                             syntax="proto3")
    for msg_name, fields in _SCHEMA:
        msg = fdp.message_type.add(name=msg_name)
        for name, number, typ, label, ref in fields:
            f = msg.field.add(name=name, number=number, type=types[typ],
                              label=F.LABEL_REPEATED if label == "rep" else F.LABEL_OPTIONAL)
            if ref:
                f.type_name = f".{PACKAGE}.{ref}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName(f"{PACKAGE}.Profile")
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


class _Strings:
    def __init__(self, table):
        self.table = table
        self.index = {}
        self("")  # string_table[0] must be ""

    def __call__(self, s):
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.table)
            self.table.append(s)
        return i


def build_profile(stacks, sample_types, period_type=None, period=0, duration_ns=0,
                  time_ns=0, comments=()):
    """stacks: (leaf-first frame names, [values...], {label: str or int}) triples.
    sample_types: [(type, unit)] matching the values. One Function and one Location per
    distinct frame name (the symbolized stacks no longer carry addresses)."""
    prof = profile_message_class()()
    s = _Strings(prof.string_table)
    for typ, unit in sample_types:
        prof.sample_type.add(type=s(typ), unit=s(unit))
    if period_type:
        prof.period_type.type, prof.period_type.unit = s(period_type[0]), s(period_type[1])
        prof.period = int(period)
    prof.duration_nanos = int(duration_ns)
    prof.time_nanos = int(time_ns)
    locations = {}
    for frames, values, labels in stacks:
        sample = prof.sample.add()
        for name in frames:
            loc = locations.get(name)
            if loc is None:
                loc = locations[name] = len(locations) + 1
                prof.function.add(id=loc, name=s(name), system_name=s(name))
                prof.location.add(id=loc).line.add(function_id=loc)
            sample.location_id.append(loc)
        sample.value.extend(int(v) for v in values)
        for key, val in labels.items():
            if isinstance(val, int):
                sample.label.add(key=s(key), num=val)
            else:
                sample.label.add(key=s(key), str=s(str(val)))
    for c in comments:
        prof.comment.append(s(c))
    return prof


def pprof_bytes(prof):
    """The profile as a pprof file holds it: gzipped protobuf."""
    return gzip.compress(prof.SerializeToString())


def read_pprof(path):
    """Parse a (gzipped or plain) pprof file with the schema."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    prof = profile_message_class()()
    prof.ParseFromString(data)
    return prof
