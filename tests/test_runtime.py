"""The BPF runtime itself: maps as mappings, bulk ring-buffer reads, typed load errors."""
import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

from bpfsight.bpf import MissingTracepointError, ObjectSpec, VerifierError
from bpfsight.bpf.maps import ARRAY, HASH, Map, possible_cpus
from bpfsight.bpf.object import load_all
from bpfsight.bpf.ringbuf import RingBuffer
from bpfsight.errors import UsageError
from helpers import bpf_objects_of

pytestmark = pytest.mark.bpf

RECORD = np.dtype([("ts", "<u8"), ("pid", "<u4"), ("seq", "<u4"), ("id", "<u8"),
                   ("a", "<u8"), ("b", "<u8")])


def test_hash_map_is_a_mapping():
    m = Map.create(1, 4, 8, 64, "t_hash").typed("<u4", "<u8")
    try:
        for k in range(10):
            m[k] = k * 100
        assert m[7] == 700
        assert sorted(int(k) for k in m) == list(range(10))
        assert len(m) == 10
        del m[3]
        with pytest.raises(KeyError):
            m[3]
        keys, values = m.read_all()
        assert dict(zip(keys.tolist(), values.tolist())) == {k: k * 100 for k in range(10) if k != 3}
        keys, _ = m.read_all(delete=True)
        assert len(keys) == 9 and len(m) == 0
    finally:
        m.release()


@pytest.mark.parametrize("map_type", [HASH, ARRAY])
def test_batch_reads_in_chunks_miss_nothing(map_type):
    """read_all passes elements through a buffer of BATCH_BYTES: 3,000 elements of 1 KiB take
    a dozen batch calls, and every element written comes back once, with its value; a
    deleting read of the hash leaves it empty."""
    from bpfsight.bpf.maps import BATCH_BYTES
    n, value = 3000, np.dtype([("k", "<u4"), ("fill", "u1", (1020,))])
    assert n * value.itemsize > 10 * BATCH_BYTES
    m = Map.create(map_type, 4, value.itemsize, 4096 if map_type == HASH else n,
                   "t_chunks").typed("<u4", value)
    try:
        for k in range(n):
            m[k] = np.array([(k * 7, np.full(1020, k % 251))], dtype=value)[0]
        keys, values = m.read_all(delete=map_type == HASH)
        assert sorted(keys.tolist()) == list(range(n))
        assert (values["k"] == keys * 7).all() and (values["fill"][:, -1] == keys % 251).all()
        if map_type == HASH:
            assert len(m) == 0
    finally:
        m.release()


def test_drain_gives_what_was_added_since_the_last_drain():
    """Arrays cannot be emptied: drain subtracts the previous reading (counters only) and
    leaves out elements that did not change; a hash is read and emptied."""
    value = np.dtype([("slots", "<u8", (4,)), ("total", "<u8"), ("comm", "S8")])
    arr = Map.create(ARRAY, 4, value.itemsize, 3, "t_drain").typed("<u4", value)
    hsh = Map.create(HASH, 4, 8, 8, "t_drain_h").typed("<u4", "<u8")
    try:
        arr[1] = np.array([([1, 2, 0, 0], 30, b"a")], dtype=value)[0]
        keys, values = arr.drain()
        assert keys.tolist() == [1] and values[0]["slots"].tolist() == [1, 2, 0, 0]
        arr[1] = np.array([([1, 5, 0, 7], 90, b"a")], dtype=value)[0]
        keys, values = arr.drain()
        assert keys.tolist() == [1]
        assert values[0]["slots"].tolist() == [0, 3, 0, 7] and values[0]["total"] == 60
        assert values[0]["comm"] == b"a"  # not a counter: kept as read
        assert len(arr.drain()[0]) == 0  # nothing new
        hsh[5] = 9
        assert hsh.drain()[1].tolist() == [9] and len(hsh) == 0
    finally:
        arr.release()
        hsh.release()


def test_percpu_values_come_per_cpu():
    m = Map.create(6, 4, 8, 1, "t_pcpu").typed("<u4", "<u8")
    try:
        assert m[0].shape == (possible_cpus(),)
        assert int(m[0].sum()) == 0
    finally:
        m.release()


def selftest_spec(**progs):
    spec = ObjectSpec.open("selftest")
    for name, on in progs.items():
        spec.programs[name].autoload = on
    return spec


def test_ring_buffer_bulk_decode_and_exact_count():
    """Every syscall of a child is one record; none lost, decoded in bulk."""
    child = subprocess.Popen([sys.executable, "-c",
                              "import os,sys; sys.stdin.read(1); [os.getppid() for _ in range(20000)]"],
                             stdin=subprocess.PIPE)
    spec = selftest_spec()
    spec.set_globals(targ_tgid=child.pid, wakeup_bytes=64 << 10)
    with spec.load() as obj:
        obj.attach_all()
        ring = RingBuffer(obj.map("events"))
        child.stdin.write(b"x")
        child.stdin.close()
        recs = []
        while child.poll() is None or ring.poll(0.05):
            ring.poll(0.05)
            recs.append(ring.read_array(RECORD))
        recs.append(ring.read_array(RECORD))
        got = np.concatenate(recs)
        drops = obj.map("event_drops").sum_cpus()
        ring.close()
    getppid = 110  # x86_64
    # 20000 records of 48 bytes (40 + the ring's 8-byte header) and the child's few other
    # syscalls after attach fill under 1 MiB, the ring's size: nothing can be dropped, even
    # if this reader got no CPU until the child was done
    assert drops == 0
    assert (got["pid"] == child.pid).all()
    n_getppid = int((got["id"] == getppid).sum())
    assert n_getppid == 20000 if os.uname().machine == "x86_64" else n_getppid >= 0
    assert (got["a"] == 1).all() and (got["b"] == 2).all()


def test_verifier_rejection_names_program_and_shows_log():
    spec = selftest_spec(selftest_rejected=True)
    with pytest.raises(VerifierError) as info:
        spec.load()
    err = info.value
    assert err.program == "selftest_rejected"
    assert err.log and "selftest_rejected" in str(err)
    assert "\n" not in str(err)


def test_load_all_loads_in_parallel_and_closes_the_rest_on_failure():
    before = bpf_objects_of(os.getpid())
    objs = load_all([selftest_spec(), selftest_spec(), selftest_spec()])
    try:
        held = bpf_objects_of(os.getpid())
        assert len(held["prog"] - before["prog"]) == 3  # one program each, all loaded
    finally:
        for o in objs:
            o.close()
    with pytest.raises(VerifierError) as info:  # the failing one's own error, with its log
        load_all([selftest_spec(), selftest_spec(selftest_rejected=True), selftest_spec()])
    assert info.value.program == "selftest_rejected" and info.value.log
    assert bpf_objects_of(os.getpid()) == before  # the two that loaded were closed


def test_missing_btf_tracepoint_is_named():
    spec = selftest_spec(selftest_missing_btf_tp=True)
    with pytest.raises(MissingTracepointError) as info:
        spec.load()
    assert "bpfsight_no_such_tracepoint" in str(info.value)


def test_missing_classic_tracepoint_is_named():
    from bpfsight.tool import select_hooks
    spec = selftest_spec(selftest_missing_tp=True)
    with pytest.raises(MissingTracepointError) as info:
        select_hooks(spec, "selftest")
    assert "bpfsight:no_such_tracepoint" in str(info.value)
    assert "selftest" in str(info.value)
    spec.close()


def test_set_global_rejects_unknown_name():
    spec = selftest_spec()
    with pytest.raises(Exception, match="no read-only global"):
        spec.set_global("no_such_global", 1)
    spec.close()


def test_cgroup_filter_resolution(tmp_path):
    from bpfsight.target import resolve_cgroup
    with pytest.raises(UsageError):
        resolve_cgroup("/definitely/not/a/cgroup")
    cgid, level = resolve_cgroup("/")
    assert level == 0 and cgid > 0


def test_batch_read_of_a_hash_that_changes_under_the_walk(monkeypatch):
    """A busy map gains keys ahead of the walk while it is read: after each chunk the keys just
    read are deleted and as many new ones added, so the walk counts more elements than the map
    ever holds at once. The read still ends, with every key that stayed in the map and nothing
    that never was (the count of a batch call was once capped at max_entries minus what was
    read: a bucket larger than that was refused for ever and the buffer doubled until
    MemoryError)."""
    from bpfsight.bpf import maps
    m = Map.create(HASH, 4, 8, 64, "t_busy").typed("<u4", "<u8")
    real, fresh, ever = maps.lib(), iter(range(1000, 2000)), set(range(60))

    class BusyLib:
        def __getattr__(self, name):
            return getattr(real, name)

        def bpf_map_lookup_batch(self, fd, token_in, token_out, keys, values, count, opts):
            ret = real.bpf_map_lookup_batch(fd, token_in, token_out, keys, values, count, opts)
            got = np.frombuffer(ctypes.string_at(keys, count._obj.value * 4), "<u4")
            for k in got.tolist():
                if k < 1000:  # an original key: replaced by a new one
                    del m[k]
                    new = next(fresh)
                    m[new] = new
                    ever.add(new)
            return ret

    try:
        for k in range(60):
            m[k] = k
        monkeypatch.setattr(maps, "BATCH_BYTES", 4 * (4 + 8))  # chunks of 4 elements
        monkeypatch.setattr(maps, "lib", BusyLib)
        keys, _ = m.read_all()
        monkeypatch.undo()
        read = set(keys.tolist())
        assert read <= ever
        assert {k for k in range(60) if k in read} == set(range(60))  # each once, before it went
    finally:
        monkeypatch.undo()
        m.release()
