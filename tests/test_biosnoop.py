"""biosnoop on a loop device only the test uses: it must report exactly the O_DIRECT requests
the test makes, with their submitter, sizes and sectors, and agree with /proc/diskstats."""
import json
import os

import pytest

from blockdev import DirectIOChild, diskstats, direct_io
from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf


def records(out):
    return [json.loads(line) for line in out.splitlines()]


def test_each_direct_write_once_with_size_and_sector(loop_device):
    name = os.path.basename(loop_device)
    tool = Running("biosnoop", "-d", name, "--json").wait_attached()
    before = diskstats(loop_device)
    took = []
    direct_io(loop_device, 40, size=8192, first_block=5, latencies=took)
    after = diskstats(loop_device)
    rc, out, err = tool.stop()
    assert rc == 0, err
    ours = [r for r in records(out) if r["pid"] == os.getpid()]
    assert all(r["disk"] == name for r in records(out))
    assert len(ours) == 40 == after["writes"] - before["writes"]
    assert all(r["rwbs"].startswith("W") and r["bytes"] == 8192 for r in ours)
    assert sorted(r["sector"] for r in ours) == [(5 + i) * 16 for i in range(40)]
    assert_within_syscalls(ours, took, first_sector=5 * 16, sectors=16)


EPS_MS = 1e-6  # float rounding only: both clocks are CLOCK_MONOTONIC in whole nanoseconds


def assert_within_syscalls(recs, took, first_sector, sectors):
    """Each request, one at a time, is issued and completes (block_rq_complete runs before the
    bio's end wakes the caller) inside the syscall that made it, which the workload timed with
    the same monotonic clock: per request, queue + issue-to-completion time <= the syscall's
    own time, on any machine however slow or loaded. Request i is at sector
    first_sector + i * sectors."""
    for r in recs:
        call_ms = took[(r["sector"] - first_sector) // sectors] * 1000
        assert 0 < r["lat_ms"] <= (r["que_ms"] or 0) + r["lat_ms"] <= call_ms + EPS_MS, (r, call_ms)


def test_pid_filter_and_queue_time(loop_device):
    with DirectIOChild(loop_device, 25, size=4096, write=False) as child:
        tool = Running("biosnoop", "-Q", "-p", child.pid, "-d", os.path.basename(loop_device),
                       "--json").wait_attached()
        direct_io(loop_device, 10, first_block=100)  # ours: must not show up
        child.go()
        rc, out, err = tool.stop()
    assert rc == 0, err
    recs = records(out)
    assert len(recs) == 25, recs
    assert {r["pid"] for r in recs} == {child.pid}
    assert all(r["rwbs"].startswith("R") and r["bytes"] == 4096 for r in recs)
    assert sorted(r["sector"] for r in recs) == [i * 8 for i in range(25)]
    assert all(r["que_ms"] is not None and r["que_ms"] >= 0 for r in recs)
    assert_within_syscalls(recs, child.latencies, first_sector=0, sectors=8)


def test_text_header_and_row(loop_device):
    name = os.path.basename(loop_device)
    tool = Running("biosnoop", "-Q", "-d", name).wait_attached()
    direct_io(loop_device, 3)
    rc, out, err = tool.stop()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TIME(s)", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES",
                                "QUE(ms)", "LAT(ms)"]
    rows = [ln.split() for ln in lines[1:] if ln.split()[2] == str(os.getpid())]
    assert len(rows) == 3 and all(r[3] == name and r[6] == "4096" for r in rows)


@pytest.mark.parametrize("args", [["-d", "nosuchdisk"], ["-p", "0"], ["-p", "999999999"],
                                  ["-m", "x"], ["0"]], ids=str)
def test_bad_arguments(args):
    res = run_bpfsight("biosnoop", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
