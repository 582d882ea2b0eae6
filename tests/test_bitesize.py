"""bitesize cross-checked against /proc/diskstats and the workload's own request sizes, on a
loop device only the test uses."""
import ctypes
import os

import pytest

from blockdev import diskstats, direct_io, unseen_allowance
from helpers import Running, assert_released, bpf_objects_of
from promkit import Exporter, total
from toolrun import assert_usage_error, records

pytestmark = pytest.mark.bpf


def test_sizes_are_the_workloads_requests_and_total_the_sectors_written(loop_device):
    """200 writes of 4 KiB and 100 of 64 KiB: two buckets of this process, and its total the
    Kbytes /proc/diskstats says were written (every request here is whole Kbytes)."""
    name = os.path.basename(loop_device)
    with open("/proc/self/comm") as f:
        me = f.read().strip()
    tool = Running("bitesize", "-d", name, "--json").wait_attached()
    held = bpf_objects_of(tool.proc.pid)
    before = diskstats(name)
    direct_io(loop_device, 200, size=4096)
    direct_io(loop_device, 100, size=65536, first_block=200)
    after = diskstats(name)
    rc, out, err = tool.stop()
    assert rc == 0, err
    assert_released(held)
    hists = {h["comm"]: h for h in records(out)}
    mine = hists[me]
    counts = {b["low"]: b["count"] for b in mine["buckets"] if b["count"]}
    assert counts == {4: 200, 64: 100}, mine
    assert mine["total"] == 200 * 4 + 100 * 64
    # every request on the disk (udev may probe it too), against the kernel's own counts
    requests = (after["writes"] - before["writes"]) + (after["reads"] - before["reads"])
    kbytes = (after["sectors_written"] - before["sectors_written"]
              + after["sectors_read"] - before["sectors_read"]) // 2
    seen = sum(h["count"] for h in hists.values())
    assert 0 <= requests - seen <= unseen_allowance(requests), (seen, requests)
    assert sum(h["total"] for h in hists.values()) <= kbytes
    assert kbytes - sum(h["total"] for h in hists.values()) <= 64 * unseen_allowance(requests)


def test_comm_filter_is_in_the_kernel(loop_device):
    """-c NAME: another process name's requests are never counted (the map stays empty)."""
    name = os.path.basename(loop_device)
    tool = Running("bitesize", "-d", name, "-c", "nosuchname", "--json").wait_attached()
    direct_io(loop_device, 20)
    rc, out, err = tool.stop()
    assert rc == 0, err
    assert records(out) == []


def test_unknown_disk_is_usage_error():
    assert "no disk named" in assert_usage_error("bitesize", "-d", "nosuchdisk0")


def test_exporter_histogram_counts_the_same_requests(loop_device):
    """The opt-in exporter collector: bpfsight_block_io_size_bytes of the workload's process
    grows by its requests, in the buckets of their sizes (le in bytes: 8 KiB holds 4 KiB). The
    workload runs in a child named for the test alone: the label is the process name, and
    other processes called "python" (the exporter is one) may do I/O of their own meanwhile."""
    me = "bszworkload"
    with Exporter("--collectors", "bitesize", "--cache", "0") as exporter:
        before, written = exporter.scrape(), diskstats(loop_device)["writes"]
        child = os.fork()
        if child == 0:
            code = 1
            try:
                ctypes.CDLL(None).prctl(15, me.encode(), 0, 0, 0)  # PR_SET_NAME
                direct_io(loop_device, 120, size=4096)
                direct_io(loop_device, 30, size=65536, first_block=120)
                code = 0
            finally:
                os._exit(code)
        assert os.waitpid(child, 0)[1] == 0
        written = diskstats(loop_device)["writes"] - written
        after = exporter.scrape()

    def grew(name, **labels):
        return total(after, name, comm=me, **labels) - total(before, name, comm=me, **labels)
    assert written == 150  # the disk's own count: one request per write
    assert grew("bpfsight_block_io_size_bytes_bucket", le="8192.0") == 120
    assert grew("bpfsight_block_io_size_bytes_bucket", le="131072.0") == 150
    assert grew("bpfsight_block_io_size_bytes_count") == 150
    assert grew("bpfsight_block_io_size_bytes_sum") == (120 * 4 + 30 * 64) * 1024
