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
    """The exporter's own families and encoder against prometheus_client's (which the daemon
    no longer imports), built alike: label values with quotes, backslashes and newlines, help
    text too, an empty label set, a histogram, in every format Prometheus asks for, with the
    same content type; twice, so the kept label texts are checked as well."""
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                        HistogramMetricFamily)
    from prometheus_client.exposition import choose_encoder
    from bpfsight.exporter import metrics
    from bpfsight.exporter.render import Encoder, choose_format

    class Snapshot:
        def __init__(self, families):
            self.families = families

        def collect(self):
            return self.families

    doc = 'Help with "quotes", \\ and\nnewline.'
    c = metrics.counter("bpfsight_x_total", doc, ["comm", "cgroup"])
    rc = CounterMetricFamily("bpfsight_x_total", doc, labels=["comm", "cgroup"])
    c.add(['a"b', "/x\\y\nz"], 3)
    rc.add_metric(['a"b', "/x\\y\nz"], 3)
    c.add(["other", "other"], 1.5e-7)
    rc.add_metric(["other", "other"], 1.5e-7)
    # labels sort around le: theirs are written sorted by name
    h = metrics.histogram("bpfsight_h_seconds", "A histogram.", ["disk", "type", "app"])
    rh = HistogramMetricFamily("bpfsight_h_seconds", "A histogram.",
                               labels=["disk", "type", "app"])
    h.add_histogram(["vda", "r", "a"], [("2e-06", 1), ("+Inf", 1234567)], 0.25)
    rh.add_metric(["vda", "r", "a"], [("2e-06", 1), ("+Inf", 1234567)], sum_value=0.25)
    g = metrics.gauge("bpfsight_g", "A gauge without labels.", value=7)
    rg = GaugeMetricFamily("bpfsight_g", "A gauge without labels.", value=7)
    big = metrics.gauge("bpfsight_big", "Go's exponents.", ["v"])
    rbig = GaugeMetricFamily("bpfsight_big", "Go's exponents.", labels=["v"])
    for v in (12345678.0, 1e21, 0.1, float("inf"), float("nan"), -3.0, 999999, 1000000,
              -12345678, 0):
        big.add([repr(v)], v)
        rbig.add_metric([repr(v)], v)
    ours, theirs = [c, h, g, big], [rc, rh, rg, rbig]
    encoder = Encoder()
    for accept in ("", "application/openmetrics-text;version=1.0.0",
                   "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4",
                   "text/plain;version=1.0.0;escaping=allow-utf-8",
                   "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.1"):
        reference, ctype = choose_encoder(accept)
        openmetrics, our_ctype = choose_format(accept)
        assert our_ctype.split("; escaping")[0] == ctype.split("; escaping")[0], accept
        for _ in range(2):
            assert encoder.encode(ours, openmetrics) == reference(Snapshot(theirs)), accept


def test_process_metrics_are_prometheus_clients():
    """process_* families: the names, help, types and samples every Prometheus client library
    writes, with the same values as prometheus_client's ProcessCollector read at the same
    moment (CPU time and open files may move between the two reads)."""
    from prometheus_client import ProcessCollector
    from bpfsight.exporter.metrics import ProcessMetrics
    ours = ProcessMetrics().collect()
    theirs = list(ProcessCollector(registry=None).collect())
    assert [(f.name, f.documentation, f.type, [(s.name, s.labels) for s in f.samples])
            for f in ours] == \
        [(f.name, f.documentation, f.type, [(s.name, s.labels) for s in f.samples])
         for f in theirs]
    assert len(ours) == 6
    for a, b in zip(ours, theirs):
        x, y = a.samples[0].value, b.samples[0].value
        tolerance = {"process_cpu_seconds": 0.05, "process_open_fds": 2,
                     "process_resident_memory_bytes": 4 << 20,
                     "process_virtual_memory_bytes": 16 << 20}.get(a.name, 0)
        assert abs(x - y) <= tolerance, (a.name, x, y)

def test_a_collector_reuses_its_families_while_its_maps_are_unchanged():
    """A collector reads its maps at every scrape and decodes them only when the bytes
    changed: the same families come back (no decode, no crediting) until an element moves,
    then the change is credited once. Real kernel maps; the collector is the exporter's own
    base class with a one-map counter."""
    from bpfsight.bpf.maps import HASH, Map
    from bpfsight.exporter.collectors import Collector, MapReads, counter

    class Fake(Collector):
        name = "fake"

        def __init__(self, bpf_map):
            super().__init__(type("Ctx", (), {"max_series": 10, "idle_s": 600.0})())
            self.counts = MapReads(bpf_map, drains=False)
            self.reads.append(self.counts)
            self.series_ = self.series(("key",), 1)
            self.decoded = 0

        def fresh_families(self):
            keys, values, drained = self.counts.read()
            self.decoded += 1
            self.series_.observe(((int(k), [int(v)], int(k)) for k, v in zip(keys, values)),
                                 lambda k: (str(k),), drained)
            yield counter("bpfsight_fake_total", "Fake.", ("key",), self.series_.items())

    m = Map.create(HASH, 4, 8, 64, "t_reuse").typed("<u4", "<u8")
    try:
        m[1], m[2] = 5, 7
        fake = Fake(m)
        first = fake.families()
        assert fake.families() is first and fake.families() is first
        assert fake.decoded == 1
        m[2] = 10
        third = fake.families()
        assert third is not first and fake.decoded == 2
        assert sorted((s.labels["key"], s.value) for s in third[0].samples) == \
            [("1", 5.0), ("2", 10.0)]
        assert fake.families() is third and fake.decoded == 2
    finally:
        m.release()
