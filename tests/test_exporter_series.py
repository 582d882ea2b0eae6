"""The exporter's bookkeeping without the kernel: capped series stay monotonic through
admission, the "other" fold, idle eviction and map drains; cgroup paths give container ids
and pod UIDs; listen addresses parse."""
import pytest

from bpfsight.errors import UsageError
from bpfsight.exporter.labels import cgroup_labels
from bpfsight.exporter.series import OTHER, CappedSeries
from bpfsight.tool import listen_arg


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def values(series):
    return {labels[0]: int(vec[0]) for labels, vec in series.items()}


def test_cap_folds_newcomers_into_other_biggest_first():
    s = CappedSeries(1, 1, max_series=2)
    s.observe([(1, [5], "a"), (2, [50], "b"), (3, [20], "c")], lambda item: (item,))
    assert values(s) == {"b": 50, "c": 20, OTHER: 5}
    s.observe([(1, [7], "a"), (2, [50], "b"), (3, [21], "c"), (4, [1], "d")], lambda i: (i,))
    assert values(s) == {"b": 50, "c": 21, OTHER: 8}


def test_counters_never_go_back():
    """Keys vanish (process exits), maps drain, label sets are evicted and re-admitted:
    every exported value only grows, and the sum of what was credited is what was counted."""
    clock = Clock()
    s = CappedSeries(1, 1, max_series=1, idle_s=10, clock=clock)
    seen = {}

    def check():
        for label, v in values(s).items():
            assert v >= seen.get(label, 0), (label, v, seen)
            seen[label] = v

    s.observe([(1, [10], "a"), (2, [3], "b")], lambda i: (i,))
    check()
    s.observe([(1, [12], "a")], lambda i: (i,))  # key 2 gone: its 3 stay in "other"
    check()
    s.observe([(1, [15], "a"), (3, [4], "c")], lambda i: (i,), drained=True)
    check()
    assert values(s) == {"a": 15, OTHER: 7}
    s.observe([(1, [1], "a")], lambda i: (i,))  # after the drain key 1 restarts at 0
    assert values(s)["a"] == 16
    clock.now = 20  # "a" idle past idle_s: dropped, its slot goes to the next grower
    s.observe([(1, [1], "a"), (3, [2], "c")], lambda i: (i,))
    assert values(s) == {"c": 2, OTHER: 7}
    check_after = dict(seen)
    check_after.pop("a")
    seen = check_after
    check()


def test_reading_that_runs_ahead_is_not_counted_twice():
    s = CappedSeries(1, 2, max_series=5)
    s.observe([(1, [10, 5], "a")], lambda i: (i,))
    s.observe([(1, [9, 6], "a")], lambda i: (i,))  # first element ran ahead last time
    s.observe([(1, [12, 6], "a")], lambda i: (i,))
    assert [int(x) for x in dict(s.items())[("a",)]] == [12, 6]


@pytest.mark.parametrize("path, want", [
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6789_abcd_"
     "ef0123456789.slice/cri-containerd-" + "ab" * 32 + ".scope",
     ("ab" * 32, "0a1b2c3d-4e5f-6789-abcd-ef0123456789")),
    ("/kubepods/besteffort/pod0a1b2c3d-4e5f-6789-abcd-ef0123456789/" + "cd" * 32,
     ("cd" * 32, "0a1b2c3d-4e5f-6789-abcd-ef0123456789")),
    ("/../../kubepods-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/crio-" + "ef" * 32
     + ".scope", ("ef" * 32, "0a1b2c3d-4e5f-6789-abcd-ef0123456789")),
    ("/system.slice/docker-" + "01" * 32 + ".scope", ("01" * 32, "")),
    ("/docker/" + "23" * 32, ("23" * 32, "")),
    ("/system.slice/nginx.service", ("", "")),
    ("", ("", "")),
])
def test_cgroup_labels(path, want):
    cgroup, container, pod = cgroup_labels(path)
    assert (container, pod) == want
    assert cgroup == path


def test_listen_arg():
    assert listen_arg("127.0.0.1:9435") == ("127.0.0.1", 9435)
    assert listen_arg("[::1]:0") == ("::1", 0)
    assert listen_arg(":9435") == ("", 9435)
    for bad in ("9435", "host:port", "127.0.0.1:65536"):
        with pytest.raises(UsageError):
            listen_arg(bad)


def test_bookkeeping_stays_bounded_under_short_lived_keys():
    """What the exporter's memory holds per metric, counted rather than guessed from RSS:
    6,000 short-lived keys (one process each, every one with its own name), read in scrapes of
    1,000 with a drain now and then, leave at most max_series + 1 exported label sets, and no
    trace of keys the kernel no longer holds; the sum of what was counted is all exported."""
    cap = 5
    s = CappedSeries(1, 1, max_series=cap)
    alive, counted = {}, 0
    for scrape in range(6):
        for pid in range(scrape * 1000, (scrape + 1) * 1000):
            alive[pid] = pid % 7 + 1  # the kernel map keeps an exited process's key...
            counted += pid % 7 + 1
        drained = scrape % 2 == 1
        s.observe([(pid, [n], f"bomb{pid}") for pid, n in alive.items()], lambda item: (item,),
                  drained)
        if drained:  # ...until a drain deletes them all
            alive.clear()
        assert len(s.values) <= cap + 1
        assert len(s._last) == len(s._label) == len(alive)
    assert sum(int(v[0]) for v in s.values.values()) == counted


def test_encoder_writes_what_prometheus_client_writes():
    """The exporter's own encoder against prometheus_client's, on families of each kind the
    exporter makes (label values with quotes, backslashes and newlines, help text too, an
    empty label set, a histogram, the process metrics), in every format Prometheus asks for;
    twice, so the kept label texts are checked as well. A unit it does not write goes to
    prometheus_client."""
    from prometheus_client import ProcessCollector
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                        HistogramMetricFamily)
    from prometheus_client.exposition import choose_encoder
    from bpfsight.exporter.render import Encoder, encode
    from bpfsight.exporter.server import _Snapshot

    c = CounterMetricFamily("bpfsight_x_total", 'Help with "quotes", \\ and\nnewline.',
                            labels=["comm", "cgroup"])
    c.add_metric(['a"b', "/x\\y\nz"], 3)
    c.add_metric(["other", "other"], 1.5e-7)
    h = HistogramMetricFamily("bpfsight_h_seconds", "A histogram.", labels=["disk"])
    h.add_metric(["vda"], [("2e-06", 1), ("+Inf", 4)], sum_value=0.25)
    g = GaugeMetricFamily("bpfsight_g", "A gauge without labels.", value=7)
    families = [c, h, g] + list(ProcessCollector(registry=None).collect())
    encoder = Encoder()
    for accept in ("", "application/openmetrics-text;version=1.0.0",
                   "text/plain;version=1.0.0;escaping=allow-utf-8"):
        reference, ctype = choose_encoder(accept)
        for _ in range(2):
            assert encode(encoder, families, ctype, lambda: None) == \
                reference(_Snapshot(families)), ctype
    unit = GaugeMetricFamily("bpfsight_u_bytes", "With a unit.", value=1, unit="bytes")
    assert encode(encoder, [unit], ctype, lambda: b"fallback") == b"fallback"
