"""biolatency cross-checked against /proc/diskstats on a loop device only the test uses."""
import json
import os
import signal

import pytest

from blockdev import diskstats, direct_io
from helpers import Running

pytestmark = pytest.mark.bpf


def completed_ios(dev):
    """reads + writes + discards + flushes completed, from /proc/diskstats."""
    d = diskstats(dev)
    return d["reads"] + d["writes"] + d.get("discards", 0) + d.get("flushes", 0)


def test_io_count_matches_diskstats(loop_device):
    name = os.path.basename(loop_device)
    tool = Running("biolatency", "-D", "--json").wait_attached()
    before = completed_ios(name)
    direct_io(loop_device, 300)
    after = completed_ios(name)
    rc, out, err = tool.stop(signal.SIGINT)
    assert rc == 0, err
    hists = [json.loads(line) for line in out.splitlines()]
    measured = sum(h["count"] for h in hists if h.get("disk") == name)
    expected = after - before
    assert expected >= 300
    assert abs(measured - expected) / expected <= 0.05, (measured, expected)


def test_per_flag_histograms_name_writes(loop_device):
    tool = Running("biolatency", "-d", os.path.basename(loop_device), "-F", "--json").wait_attached()
    direct_io(loop_device, 50)
    rc, out, err = tool.stop()
    assert rc == 0, err
    hists = [json.loads(line) for line in out.splitlines()]
    writes = sum(h["count"] for h in hists if h["flags"].startswith("Write"))
    assert writes >= 50
    assert all(h["unit"] == "usecs" for h in hists)


def test_unknown_disk_is_usage_error():
    from helpers import run_bpfsight
    res = run_bpfsight("biolatency", "-d", "nosuchdisk", "1", "1")
    assert res.returncode == 2 and "no disk named" in res.stderr
