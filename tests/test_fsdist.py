"""fsdist/ext4dist against the workload's own operations: on a file in /tmp (ext4 here) a known
number of reads, writes, opens and fsyncs, each timed by the workload around the call; the
histograms count exactly those and their total lies within the workload's own total. The
same operations on tmpfs (/dev/shm) are not ext4's."""
import os

import pytest

from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

COUNTS = {"open": 21, "write": 100, "fsync": 7, "read": 50}
WORK = """
import os, sys, time
took = dict(open=0, write=0, fsync=0, read=0)
def timed(op, fn, *a):
    t = time.monotonic_ns(); r = fn(*a); took[op] += time.monotonic_ns() - t; return r
for d in (sys.argv[1], "/dev/shm"):
    path = os.path.join(d, "fsdist-%d" % os.getpid())
    for _ in range(20):
        fd = timed("open", os.open, path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
    fd = timed("open", os.open, path, os.O_RDWR)
    for i in range(100):
        timed("write", os.pwrite, fd, b"w" * 4096, i * 4096)
        if i % 15 == 0:
            timed("fsync", os.fsync, fd)
    for i in range(50):
        timed("read", os.pread, fd, 4096, i * 4096)
    os.close(fd)
    os.unlink(path)
    if d != "/dev/shm":
        ext4 = dict(took)
result = " ".join("%s=%d" % kv for kv in ext4.items())
"""


def fs_type(path):
    with open("/proc/mounts") as f:
        mounts = [ln.split() for ln in f]
    best = max((m for m in mounts if path.startswith(m[1].rstrip("/") + "/")),
               key=lambda m: len(m[1]))
    return best[2]


def counts_and_total_time_of_known_operations(tmp_path, tool):
    if fs_type(str(tmp_path)) != "ext4":
        pytest.skip(f"{tmp_path} is not on ext4")
    recs, took, _ = trace_gated(*tool, work=WORK, work_args=[str(tmp_path)])
    took = {k: int(v) for k, v in (w.split("=") for w in took)}
    hists = {r["operation"]: r for r in recs}
    assert {op: h["count"] for op, h in hists.items()} == COUNTS, hists
    for op, h in hists.items():
        # each syscall's span lies inside the workload's timing of its call (µs, floored)
        assert h["total"] <= took[op] / 1000, (op, h["total"], took[op])
        assert h["total"] >= took[op] / 1000 * 0.2 - COUNTS[op], (op, h["total"], took[op])


def test_counts_and_total_time_of_known_operations(tmp_path):
    counts_and_total_time_of_known_operations(tmp_path, ["fsdist", "-t", "ext4"])


def test_bad_input():
    assert_usage_error("fsdist", "-t", "nosuchfs")
    assert os.path.exists("/proc/mounts")
