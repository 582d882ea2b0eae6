"""biostat cross-checked against /proc/diskstats for a loop device only the test uses: request
counts and bytes must match, and the in-flight integrals must agree with the kernel's own
weighted time (time_in_queue) and busy time (io_ticks)."""
import contextlib
import json
import math
import os

import pytest

from blockdev import DirectIOChild, diskstats, direct_io, jiffy_ms
from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf


def unseen_allowance(n):
    """How many of n requests may go untraced: on this kernel (6.18) a completion's block
    tracepoints very rarely reach no BPF program at all (about 1 in 10^5 requests measured,
    with no recursion miss counted), so exact equality would make the test flaky."""
    return 1 + n // 1000


def totals(out):
    """Sums over the intervals: requests, bytes, and the integrals in milliseconds."""
    rows = [json.loads(line) for line in out.splitlines()]
    ms = lambda r, rate: rate * r["interval_s"] * 1000  # noqa: E731
    return {
        "rows": rows,
        "iops_x_s": sum((r["r_s"] + r["w_s"]) * r["interval_s"] for r in rows),
        "reads": sum(r["reads"] for r in rows), "writes": sum(r["writes"] for r in rows),
        "read_bytes": sum(r["read_bytes"] for r in rows),
        "write_bytes": sum(r["write_bytes"] for r in rows),
        "queue_ms": sum(ms(r, r["aqu_sz"]) for r in rows),
        "busy_ms": sum(ms(r, r["util_pct"] / 100) for r in rows),
        "write_wait_ms": sum(r["w_await_ms"] * r["writes"] for r in rows),
    }


def test_matches_diskstats(loop_device):
    name = os.path.basename(loop_device)
    tool = Running("biostat", "-d", name, "--json", "1").wait_attached()
    before = diskstats(loop_device)
    in_syscalls_s = direct_io(loop_device, 400, size=16384)
    in_syscalls_s += direct_io(loop_device, 200, size=4096, write=False)
    after = diskstats(loop_device)
    rc, out, err = tool.stop()
    assert rc == 0, err
    got = totals(out)
    want = {k: after[k] - before[k] for k in before}
    assert {r["disk"] for r in got["rows"]} == {name}
    ios = want["reads"] + want["writes"]
    assert ios == 600
    assert abs(got["iops_x_s"] - ios) <= 0.05 * ios, (got["iops_x_s"], ios)
    slack = unseen_allowance(ios)
    assert 0 <= want["reads"] - got["reads"] <= slack, (got["reads"], want["reads"])
    assert 0 <= want["writes"] - got["writes"] <= slack, (got["writes"], want["writes"])
    assert 0 <= want["sectors_read"] * 512 - got["read_bytes"] <= slack * 4096
    assert 0 <= want["sectors_written"] * 512 - got["write_bytes"] <= slack * 16384
    # diskstats truncates each figure to whole milliseconds
    assert abs(got["queue_ms"] - want["time_in_queue_ms"]) <= 2 + 0.05 * want["time_in_queue_ms"]
    assert abs(got["write_wait_ms"] - want["ms_writing"]) <= 2 + 0.05 * want["ms_writing"]
    # one request at a time, but the workload wakes (and may start the next) a moment before
    # the previous request's accounting ends: busy time is nearly all of the in-flight
    # integral, and each request is in flight only while the workload sits in its syscall
    assert 0.9 * got["queue_ms"] <= got["busy_ms"] <= got["queue_ms"] + 1e-3
    assert 0 < got["busy_ms"] <= in_syscalls_s * 1000 + 0.5


def test_utilisation_matches_io_ticks(loop_device):
    """io_ticks advances in whole jiffies (4 ms at HZ=250) when a request crosses a tick, so
    it is an unbiased but coarse count: compare with a tolerance of a few ticks plus three
    standard deviations of that sampling."""
    tick = jiffy_ms()
    tool = Running("biostat", "-d", os.path.basename(loop_device), "--json", "1").wait_attached()
    before = diskstats(loop_device)
    direct_io(loop_device, 1500, size=16384)
    after = diskstats(loop_device)
    rc, out, err = tool.stop()
    assert rc == 0, err
    busy, ticks = totals(out)["busy_ms"], after["io_ticks_ms"] - before["io_ticks_ms"]
    assert abs(busy - ticks) <= tick * (2 + 3 * math.sqrt(max(busy, ticks) / tick)), (busy, ticks)


def test_queue_depth_of_parallel_readers(loop_device):
    """Four readers at once: the in-flight integral counts every request in flight and still
    matches the kernel's weighted time."""
    with contextlib.ExitStack() as stack:
        children = [stack.enter_context(DirectIOChild(loop_device, 1500, write=False,
                                                      first_block=i * 1500)) for i in range(4)]
        tool = Running("biostat", "-d", os.path.basename(loop_device), "--json", "1")
        tool.wait_attached()
        before = diskstats(loop_device)
        for c in children:
            c.start()
        for c in children:
            c.wait()
        after = diskstats(loop_device)
    rc, out, err = tool.stop()
    assert rc == 0, err
    got = totals(out)
    weighted = after["time_in_queue_ms"] - before["time_in_queue_ms"]
    assert after["reads"] - before["reads"] == 6000
    assert 0 <= 6000 - got["reads"] <= unseen_allowance(6000), got["reads"]
    assert abs(got["queue_ms"] - weighted) <= 2 + 0.05 * weighted, (got["queue_ms"], weighted)
    assert got["queue_ms"] + 1e-3 >= got["busy_ms"]  # the integral counts each request in flight


def test_text_layout(loop_device):
    name = os.path.basename(loop_device)
    tool = Running("biostat", "-T", "-d", name, "1").wait_attached()
    direct_io(loop_device, 20)
    rc, out, err = tool.stop()
    assert rc == 0, err
    lines = out.splitlines()
    header = next(ln for ln in lines if ln.startswith("Device"))
    assert header.split() == ["Device", "r/s", "w/s", "rkB/s", "wkB/s", "aqu-sz", "%util",
                              "await"]
    row = next(ln.split() for ln in lines if ln.startswith(name))
    assert float(row[2]) > 0 and float(row[1]) == 0


@pytest.mark.parametrize("args", [["0"], ["1", "0"], ["-d", "nosuchdisk"], ["x"]], ids=str)
def test_bad_arguments(args):
    res = run_bpfsight("biostat", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
