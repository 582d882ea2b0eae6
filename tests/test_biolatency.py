"""biolatency cross-checked against /proc/diskstats on a loop device only the test uses."""
import json
import os
import signal
import subprocess

import pytest

from helpers import Running

pytestmark = pytest.mark.bpf


@pytest.fixture
def loop_device(tmp_path):
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    dev = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                         text=True, check=True).stdout.strip()
    subprocess.run(["udevadm", "settle"], capture_output=True)
    yield dev
    subprocess.run(["losetup", "-d", dev], capture_output=True)


def completed_ios(name):
    """reads + writes + discards + flushes completed, from /proc/diskstats."""
    with open("/proc/diskstats") as f:
        for line in f:
            fields = line.split()
            if fields[2] == name:
                nums = [int(x) for x in fields[3:]]
                return nums[0] + nums[4] + (nums[11] if len(nums) > 11 else 0) + \
                    (nums[15] if len(nums) > 15 else 0)
    raise AssertionError(f"{name} not in /proc/diskstats")


def direct_writes(dev, count, size=4096):
    import mmap
    buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
    buf.write(b"x" * size)
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    try:
        for i in range(count):
            os.pwrite(fd, buf, i * size)
    finally:
        os.close(fd)


def test_io_count_matches_diskstats(loop_device):
    name = os.path.basename(loop_device)
    tool = Running("biolatency", "-D", "--json").wait_attached()
    before = completed_ios(name)
    direct_writes(loop_device, 300)
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
    direct_writes(loop_device, 50)
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
