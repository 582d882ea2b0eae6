"""Metric families as the exporter builds them: a name, help, type and samples. The same shape
as prometheus_client's CounterMetricFamily, GaugeMetricFamily and HistogramMetricFamily (and
the same samples: a test encodes both), without importing prometheus_client into the daemon,
which cost ~14 MB of RSS and ~37 ms of start-up on every node (issue 19)."""
import math
import os
import resource
from collections import namedtuple

Sample = namedtuple("Sample", "name labels value")


class Family:
    """One metric family: its series, each the label values (in label_names' order) and a
    value, or for a histogram the cumulative buckets [(le text, count)], +Inf last, and the
    sum. For a counter, `name` is without `_total`, as OpenMetrics and prometheus_client have
    it. The encoder writes series straight from here; `samples` is for readers."""

    __slots__ = ("name", "documentation", "type", "label_names", "series")

    def __init__(self, name, documentation, kind, labels=()):
        if kind == "counter" and name.endswith("_total"):
            name = name[:-6]
        self.name = name
        self.documentation = documentation
        self.type = kind
        self.label_names = tuple(labels)
        self.series = []

    def add(self, values, value):
        """A counter's or gauge's series."""
        self.series.append((tuple(values), value))

    def add_histogram(self, values, buckets, sum_value):
        """A histogram's series: buckets [(le text, cumulative count)], +Inf last."""
        self.series.append((tuple(values), buckets, sum_value))

    def sample_count(self):
        if self.type == "histogram":
            return sum(len(s[1]) + 2 for s in self.series)
        return len(self.series)

    @property
    def samples(self):
        """The samples as prometheus_client's families hold them."""
        out = []
        for values, *rest in self.series:
            labels = dict(zip(self.label_names, values))
            if self.type != "histogram":
                suffix = "_total" if self.type == "counter" else ""
                out.append(Sample(self.name + suffix, labels, rest[0]))
                continue
            buckets, total = rest
            out += [Sample(self.name + "_bucket", {**labels, "le": le}, n) for le, n in buckets]
            out += [Sample(self.name + "_count", labels, buckets[-1][1]),
                    Sample(self.name + "_sum", labels, total)]
        return out


def counter(name, doc, labels=(), value=None):
    return _family(name, doc, "counter", labels, value)


def gauge(name, doc, labels=(), value=None):
    return _family(name, doc, "gauge", labels, value)


def histogram(name, doc, labels=()):
    return Family(name, doc, "histogram", labels)


def _family(name, doc, kind, labels, value):
    fam = Family(name, doc, kind, labels)
    if value is not None:
        fam.add((), value)
    return fam


def number(value):
    """go_float, with a fast way for the common case of a small whole count."""
    if type(value) is int and -10**15 < value < 10**6:
        return f"{value}.0"
    return go_float(value)


def go_float(value):
    """A value as Prometheus' Go code writes it (and prometheus_client's floatToGoString):
    +Inf, -Inf, NaN, and exponents from 1e+07 up."""
    d = float(value)
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if d != d:
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


class ProcessMetrics:
    """The exporter's own process_* metrics, the names and help every Prometheus client
    library writes (process_cpu_seconds_total, process_resident_memory_bytes, ...)."""

    def __init__(self):
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.pagesize = os.sysconf("SC_PAGESIZE")
        with open("/proc/stat", "rb") as f:
            self.btime = next(float(line.split()[1]) for line in f
                              if line.startswith(b"btime "))

    def collect(self):
        result = []
        try:
            with open("/proc/self/stat", "rb") as f:
                parts = f.read().rsplit(b")", 1)[-1].split()
            result += [
                gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                      value=float(parts[20])),
                gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                      value=float(parts[21]) * self.pagesize),
                gauge("process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds.",
                      value=float(parts[19]) / self.ticks + self.btime),
                counter("process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.",
                        value=float(parts[11]) / self.ticks + float(parts[12]) / self.ticks),
            ]
        except OSError:
            pass
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        result += [
            gauge("process_open_fds", "Number of open file descriptors.", value=_open_fds()),
            gauge("process_max_fds", "Maximum number of open file descriptors.",
                  value=math.inf if soft == resource.RLIM_INFINITY else soft),
        ]
        return result


def _open_fds():
    """Linux 6.2 and later give the count as the size of /proc/self/fd (the exporter holds a
    few hundred BPF fds: listing them was a tenth of an idle scrape); earlier ones say 0."""
    return os.stat("/proc/self/fd").st_size or len(os.listdir("/proc/self/fd"))
