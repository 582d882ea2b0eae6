"""biotop cross-checked against the workload's own request count and /proc/diskstats, on a loop
device only the test uses."""
import json
import os

import pytest

from blockdev import DirectIOChild, diskstats, direct_io
from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf


def rows(out):
    return [json.loads(line) for line in out.splitlines()]


def test_workload_io_count_and_bytes(loop_device):
    name = os.path.basename(loop_device)
    with DirectIOChild(loop_device, 60, size=8192) as child:
        tool = Running("biotop", "-C", "--json", "1").wait_attached()
        before = diskstats(loop_device)
        child.go()
        after = diskstats(loop_device)
        rc, out, err = tool.stop()
    assert rc == 0, err
    mine = [r for r in rows(out) if r["pid"] == child.pid and r["disk"] == name]
    assert sum(r["io"] for r in mine) == 60 == after["writes"] - before["writes"]
    assert sum(r["bytes"] for r in mine) == 60 * 8192
    assert {r["dir"] for r in mine} == {"W"}
    # one request at a time, each issued and completed (block_rq_complete runs before the bio's
    # end wakes the caller) inside the syscall that made it, which the child timed with the same
    # monotonic clock: the summed issue-to-completion time is at most the summed syscall time,
    # on any machine however slow or loaded (1e-6 ms: float rounding)
    assert all(r["avg_ms"] > 0 for r in mine)
    in_syscalls_ms = sum(child.latencies) * 1000
    assert sum(r["avg_ms"] * r["io"] for r in mine) <= in_syscalls_ms + 1e-6, (mine, in_syscalls_ms)


def test_pid_filter_shows_only_that_process(loop_device):
    with DirectIOChild(loop_device, 20, write=False) as child:
        tool = Running("biotop", "-C", "--json", "-p", child.pid, "1").wait_attached()
        direct_io(loop_device, 15)  # ours: filtered out
        child.go()
        rc, out, err = tool.stop()
    assert rc == 0, err
    recs = rows(out)
    assert {r["pid"] for r in recs} == {child.pid}
    mine = [r for r in recs if r["disk"] == os.path.basename(loop_device)]
    assert sum(r["io"] for r in mine) == 20 and {r["dir"] for r in mine} == {"R"}


def test_text_layout(loop_device):
    tool = Running("biotop", "-C", "-r", "5", "1").wait_attached()
    direct_io(loop_device, 5)
    rc, out, err = tool.stop()
    assert rc == 0, err
    assert "loadavg:" in out
    header = next(ln for ln in out.splitlines() if ln.startswith("PID"))
    assert header.split() == ["PID", "COMM", "D", "MAJ", "MIN", "DISK", "I/O", "Kbytes", "AVGms"]
    mine = [ln.split() for ln in out.splitlines() if ln.split()[:1] == [str(os.getpid())]]
    # an interval may end between the 5 requests (the likelier the slower the machine): sum the
    # I/O column over the intervals
    assert sum(int(r[6]) for r in mine if r[5] == os.path.basename(loop_device)) == 5, out


@pytest.mark.parametrize("args", [["0"], ["1", "x"], ["-r", "0"], ["-s", "nope"],
                                  ["-p", "999999999"]], ids=str)
def test_bad_arguments(args):
    res = run_bpfsight("biotop", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
