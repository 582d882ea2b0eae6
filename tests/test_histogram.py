"""Histogram math and BCC-layout rendering (no BPF)."""
from bpfsight.report.histogram import Log2Histogram, bucket_bounds, format_log2


def test_bucket_bounds_follow_bcc():
    assert bucket_bounds(0) == (0, 1)
    assert bucket_bounds(1) == (2, 3)
    assert bucket_bounds(10) == (1024, 2047)


def test_format_matches_bcc_layout():
    h = Log2Histogram([1, 0, 4] + [0] * 29, total=20, unit="usecs")
    text = format_log2(h)
    assert text.splitlines() == [
        "     usecs               : count    distribution",
        "         0 -> 1          : 1        |**********                              |",
        "         2 -> 3          : 0        |                                        |",
        "         4 -> 7          : 4        |****************************************|",
    ]


def test_empty_histogram_prints_nothing():
    assert format_log2(Log2Histogram([0] * 32)) == ""


def test_percentiles_and_mean():
    h = Log2Histogram([0] * 32, unit="usecs")
    h.slots[3] = 99   # 8..15
    h.slots[10] = 1   # 1024..2047
    h.total = 99 * 10 + 1500
    assert h.count == 100
    assert h.percentile(50) == 15
    assert h.percentile(99) == 15
    assert h.percentile(100) == 2047
    assert abs(h.mean - 24.9) < 1e-9
    d = h.to_dict()
    assert d["count"] == 100 and d["p99"] == 15 and len(d["buckets"]) == 11


def test_merge_adds_slots_and_totals():
    a = Log2Histogram([1] * 32, total=5)
    a.merge(Log2Histogram([2] * 32, total=7))
    assert a.slots == [3] * 32 and a.total == 12
