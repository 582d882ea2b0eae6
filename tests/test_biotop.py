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
    assert all(0 < r["avg_ms"] < 10000 for r in mine)


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
    assert any(r[5] == os.path.basename(loop_device) and r[6] == "5" for r in mine), out


@pytest.mark.parametrize("args", [["0"], ["1", "x"], ["-r", "0"], ["-s", "nope"],
                                  ["-p", "999999999"]], ids=str)
def test_bad_arguments(args):
    res = run_bpfsight("biotop", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
