"""biostat cross-checked against /proc/diskstats for a loop device only the test uses: request
counts and bytes must match, and the in-flight integrals must agree with the kernel's own
weighted time (time_in_queue) and busy time (io_ticks)."""
import contextlib
import json
import math
import os
import time

import pytest

from blockdev import DirectIOChild, diskstats, direct_io, jiffy_ms, unseen_allowance
from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf


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


def iops_rounding(rows):
    """How far sum(rate * interval_s) may be from the request count: each record's interval_s
    is rounded to 1 us while its rates divide by the unrounded interval."""
    return sum((r["reads"] + r["writes"]) * 0.5e-6 / r["interval_s"] for r in rows) + 1e-6


def assert_queue_matches(got_ms, want_ms):
    """The in-flight integral against the kernel's own weighted time (time_in_queue: the sum of
    each request's start_time_ns-to-end time). Both span block_io_start to block_io_done: the
    kernel stamps a request's start just after block_io_start fires (or earlier in the same
    submission, from its per-plug cached clock) and reads its end clock just before
    block_io_done fires, so per request the two spans differ only by the few kernel
    instructions between the tracepoint and the kernel's clock read: a small fraction of a
    request's own service time, which on a loop device is itself CPU work on the same kernel
    and grows with load just as they do (allowed: 5%). diskstats truncates each reading to a
    whole ms, so a difference of two readings is off by less than 1 ms each way (allowed: 2)."""
    assert abs(got_ms - want_ms) <= 2 + 0.05 * want_ms, (got_ms, want_ms)


def assert_busy_matches_io_ticks(busy_ms, ticks_ms, tick_ms):
    """io_ticks advances in whole jiffies when a busy period crosses a tick, so it is an
    unbiased but coarse count of the same busy time: each busy period of d ms adds
    floor(d / tick) or one more tick, a Bernoulli trial with p = frac(d / tick), whose variance
    p(1 - p) <= p <= d / tick. The sum's standard deviation is therefore at most
    sqrt(busy / tick) ticks; allow 3 of them plus 2 ticks for the periods cut by the two
    readings."""
    tolerance = tick_ms * (2 + 3 * math.sqrt(max(busy_ms, ticks_ms) / tick_ms))
    assert abs(busy_ms - ticks_ms) <= tolerance, (busy_ms, ticks_ms, tolerance)


def test_matches_diskstats(loop_device):
    name = os.path.basename(loop_device)
    tick = jiffy_ms()
    tool = Running("biostat", "-d", name, "--json", "1").wait_attached()
    before = diskstats(loop_device)
    t0 = time.monotonic()
    direct_io(loop_device, 400, size=16384)
    direct_io(loop_device, 200, size=4096, write=False)
    after = diskstats(loop_device)
    wall_ms = (time.monotonic() - t0) * 1000
    rc, out, err = tool.stop()
    assert rc == 0, err
    got = totals(out)
    want = {k: after[k] - before[k] for k in before}
    assert {r["disk"] for r in got["rows"]} == {name}
    ios = want["reads"] + want["writes"]
    assert ios == 600
    # the rates times the intervals give back the counts, up to the interval's rounding
    assert abs(got["iops_x_s"] - got["reads"] - got["writes"]) <= iops_rounding(got["rows"])
    slack = unseen_allowance(ios)
    assert 0 <= want["reads"] - got["reads"] <= slack, (got["reads"], want["reads"])
    assert 0 <= want["writes"] - got["writes"] <= slack, (got["writes"], want["writes"])
    assert 0 <= want["sectors_read"] * 512 - got["read_bytes"] <= slack * 4096
    assert 0 <= want["sectors_written"] * 512 - got["write_bytes"] <= slack * 16384
    assert_queue_matches(got["queue_ms"], want["time_in_queue_ms"])
    assert_queue_matches(got["write_wait_ms"], want["ms_writing"])  # the same spans, writes only
    # busy time is the union of the spans the integral sums: never more than it, and every
    # span ended (its end is counted in diskstats just after block_io_done) before the second
    # reading, and began after t0
    assert 0 < got["busy_ms"] <= got["queue_ms"] + 1e-3
    assert got["busy_ms"] <= wall_ms, (got["busy_ms"], wall_ms)
    assert_busy_matches_io_ticks(got["busy_ms"], want["io_ticks_ms"], tick)


def test_utilisation_matches_io_ticks(loop_device):
    """Busy time against the kernel's own io_ticks, over enough requests that the jiffy
    sampling's error is small beside the busy time (see assert_busy_matches_io_ticks)."""
    tick = jiffy_ms()
    tool = Running("biostat", "-d", os.path.basename(loop_device), "--json", "1").wait_attached()
    before = diskstats(loop_device)
    direct_io(loop_device, 1500, size=16384)
    after = diskstats(loop_device)
    rc, out, err = tool.stop()
    assert rc == 0, err
    got = totals(out)
    assert got["busy_ms"] <= got["queue_ms"] + 1e-3
    assert_busy_matches_io_ticks(got["busy_ms"], after["io_ticks_ms"] - before["io_ticks_ms"],
                                 tick)


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
    assert_queue_matches(got["queue_ms"], weighted)
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
