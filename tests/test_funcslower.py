"""funcslower against the workload's own timing of each call: usleep() calls of 20 ms are all
reported with their argument, return value and a latency inside the workload's timing of
the call; the 10 µs ones stay below the threshold and are not."""
import pytest

from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import ctypes, time
libc = ctypes.CDLL("libc.so.6")
took = []
for us in [20000, 10, 10, 20000, 10, 20000]:
    t = time.monotonic_ns()
    libc.usleep(us)
    took.append((us, time.monotonic_ns() - t))
result = " ".join("%d:%d" % x for x in took)
"""


def test_slow_calls_with_argument_and_return_value():
    recs, took, pid = trace_gated("funcslower", "-m", "5", "-a", "1", "c:usleep", work=WORK)
    took = [tuple(map(int, t.split(":"))) for t in took]
    slow = [ns for us, ns in took if us == 20000]
    mine = [r for r in recs if r["pid"] == pid]
    assert len(mine) == len(slow) == 3, mine
    for r, ns in zip(mine, slow):
        assert r["args"] == [20000] and r["retval"] == 0 and r["func"] == "c:usleep"
        # a sleep never ends early; the uprobe-to-uretprobe span lies inside the call's timing
        assert 20000 <= r["lat_us"] <= ns / 1e3, (r, ns)


def test_bad_input():
    assert "kprobes" in assert_usage_error("funcslower", "vfs_read")
    assert "return" in assert_usage_error("funcslower", "t:sched:sched_switch")
    assert_usage_error("funcslower", "-a", "9", "c:usleep")
