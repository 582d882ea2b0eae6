"""Run statistics of BPF programs, read with bpf_obj_get_info_by_fd, and the --stats collector:
BPF_ENABLE_STATS held while a tool runs, and the objects and ring buffers it opens sampled so
their run counts, run time and drops can be reported (see bpfsight.selfstats).
Struct layouts are the uapi ones (include/uapi/linux/bpf.h)."""
import ctypes
import os
from collections import namedtuple

from ._libbpf import check_int, lib

BPF_STATS_RUN_TIME = 0


class _ProgInfo(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * 16), ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32), ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64), ("nr_jited_ksyms", ctypes.c_uint32),
        ("nr_jited_func_lens", ctypes.c_uint32), ("jited_ksyms", ctypes.c_uint64),
        ("jited_func_lens", ctypes.c_uint64), ("btf_id", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32), ("func_info", ctypes.c_uint64),
        ("nr_func_info", ctypes.c_uint32), ("nr_line_info", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64), ("jited_line_info", ctypes.c_uint64),
        ("nr_jited_line_info", ctypes.c_uint32), ("line_info_rec_size", ctypes.c_uint32),
        ("jited_line_info_rec_size", ctypes.c_uint32), ("nr_prog_tags", ctypes.c_uint32),
        ("prog_tags", ctypes.c_uint64), ("run_time_ns", ctypes.c_uint64),
        ("run_cnt", ctypes.c_uint64), ("recursion_misses", ctypes.c_uint64),
        ("verified_insns", ctypes.c_uint32), ("attach_btf_obj_id", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
    ]


def prog_info(fd):
    """struct bpf_prog_info of the program behind fd (run_cnt/run_time_ns count only while
    some process holds BPF run-time stats on)."""
    info = _ProgInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    check_int(lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)),
              "read BPF program info")
    return info


class RunTimeStats:
    """BPF_ENABLE_STATS: the kernel times every program while some process holds this fd
    (the sysctl kernel.bpf_stats_enabled is left as it is). __enter__ raises OSError."""

    def __init__(self):
        self.fd = -1

    def __enter__(self):
        self.fd = check_int(lib().bpf_enable_stats(BPF_STATS_RUN_TIME), "BPF_ENABLE_STATS")
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


ProgSample = namedtuple("ProgSample", "object program info")
RingSample = namedtuple("RingSample", "name records drops")


class Collector:
    """What --stats reports: every Object loaded and RingBuffer opened while collecting.
    Programs are sampled live, and one last time as their object closes."""

    def __init__(self):
        self._objects = []
        self._final = {}
        self._final_map_full = {}
        self._rings = []
        self._closed_rings = []

    def object_loaded(self, obj):
        self._objects.append(obj)

    def object_closing(self, obj):
        for s in self._sample(obj):
            self._final[(s.object, s.program)] = s
        self._final_map_full[obj.name] = map_full_count(obj)
        if obj in self._objects:
            self._objects.remove(obj)

    @staticmethod
    def _sample(obj):
        for name, prog in obj.programs.items():
            fd = prog.fd
            if fd >= 0:
                yield ProgSample(obj.name, name, prog_info(fd))

    def programs(self):
        found = dict(self._final)
        for obj in self._objects:
            for s in self._sample(obj):
                found[(s.object, s.program)] = s
        return list(found.values())

    def map_full(self):
        """{object: inserts lost because a map was full} (maps.bpf.h's map_full counter)."""
        found = dict(self._final_map_full)
        found.update((obj.name, map_full_count(obj)) for obj in self._objects)
        return found

    def ring_opened(self, ring):
        self._rings.append(ring)

    def ring_closing(self, ring):
        self._closed_rings.append(RingSample(ring.name, ring.records, _drops(ring)))
        if ring in self._rings:
            self._rings.remove(ring)

    def rings(self):
        return self._closed_rings + [RingSample(r.name, r.records, _drops(r)) for r in self._rings]


def _drops(ring):
    """Records a ring could not take, where its owner counts them (a ring with a drops())."""
    return ring.drops() if hasattr(ring, "drops") else 0


def map_full_count(obj):
    """Sum over CPUs of obj's map_full counter; 0 for an object without one."""
    m = obj.maps.get("map_full")
    return m.sum_cpus() if m is not None else 0


# Observers of what the binding opens and closes: objects with any of object_loaded(obj),
# object_closing(obj), ring_opened(ring), ring_closing(ring). The binding calls them and
# knows nothing of who listens (the CLI's --stats does, through a Collector).
_observers = []


def observe(observer):
    _observers.append(observer)
    return observer


def unobserve(observer):
    if observer in _observers:
        _observers.remove(observer)


def notify(event, subject):
    for observer in list(_observers):
        handler = getattr(observer, event, None)
        if handler is not None:
            handler(subject)


def prog_info_by_id(prog_id):
    """prog_info of any loaded program by its id (e.g. one another process holds)."""
    fd = lib().bpf_prog_get_fd_by_id(prog_id)
    if fd < 0:
        raise OSError(-fd, f"bpf_prog_get_fd_by_id({prog_id}): {os.strerror(-fd)}")
    try:
        return prog_info(fd)
    finally:
        os.close(fd)
