"""argdist against the workload's own values: labs() is called with known arguments (a libc
function the interpreter never calls itself), so the per-value counts (-C), the return
values and the log2 histogram (-H) are known exactly; a kernel filter keeps what passes."""
import collections

import pytest

from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

VALUES = [7] * 30 + [-3] * 20 + list(range(1, 1001))
WORK = f"""
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.labs.argtypes = [ctypes.c_long]
for v in {VALUES}:
    libc.labs(v)
result = "ok"
"""


def test_counts_histogram_and_filter():
    recs, _, _ = trace_gated(
        "argdist", "-C", "p:c:labs(long x):long:x:x<10", "-C", "r:c:labs():long:$retval#abs",
        "-H", "p:c:labs(long x):long:x", work=WORK)
    by = collections.defaultdict(dict)
    for r in recs:
        if "value" in r:
            by[r["specifier"]][r["value"]] = r["count"]
    small = collections.Counter(v for v in VALUES if v < 10)
    assert by["p:c:labs(long x):long:x:x<10"] == dict(small)
    assert by["r:c:labs():long:$retval#abs"] == dict(collections.Counter(abs(v) for v in VALUES))
    hist = [r for r in recs if r.get("specifier") == "p:c:labs(long x):long:x" and "buckets" in r]
    got = {b["low"]: b["count"] for b in hist[-1]["buckets"]}
    want = collections.Counter()
    for v in VALUES:
        want[0 if v <= 1 else 1 << (v.bit_length() - 1)] += 1  # -3 < 0 counts in slot 0
    assert {k: n for k, n in got.items() if n} == dict(want)


def test_bad_specifiers():
    assert "kprobes" in assert_usage_error("argdist", "-C", "p::do_sys_open(int dfd)")
    assert "cannot parse" in assert_usage_error("argdist", "-H", "c:malloc")
    assert "-H or -C" in assert_usage_error("argdist")
