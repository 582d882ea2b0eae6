"""The log2 histogram: one data type for every latency tool, printed in BCC's layout and
serialised the same way for JSON (and, later, Prometheus)."""
HIST_SLOTS = 32  # bpf/include/hist.h MAX_SLOTS


def bucket_bounds(i):
    """Slot i holds [low, high]; slot 0 holds 0 and 1 (BCC's convention)."""
    low, high = (1 << (i + 1)) >> 1, (1 << (i + 1)) - 1
    return (0 if low == high else low), high


class Log2Histogram:
    def __init__(self, slots, total=0, unit="usecs", labels=None):
        self.slots = list(slots)
        self.total = total      # exact sum of the recorded values, in `unit`
        self.unit = unit
        self.labels = dict(labels or {})
        self.extra = {}         # other figures of the same key, kept beside it in to_dict()
        self.title = None       # the line printed above it, when the key needs one

    def with_extra(self, **figures):
        self.extra.update(figures)
        return self

    def __repr__(self):
        return f"Log2Histogram(count={self.count}, total={self.total}, unit={self.unit!r})"

    @classmethod
    def from_record(cls, rec, unit, **labels):
        """From a decoded `struct hist` (numpy record with slots and total)."""
        return cls([int(v) for v in rec["slots"]], int(rec["total"]), unit, labels)

    @property
    def count(self):
        return sum(self.slots)

    @property
    def mean(self):
        return self.total / self.count if self.count else 0.0

    def percentile(self, p):
        """Upper bound of the bucket holding the p-th percentile (0 < p <= 100)."""
        target = self.count * p / 100.0
        seen = 0
        for i, n in enumerate(self.slots):
            seen += n
            if n and seen >= target:
                return bucket_bounds(i)[1]
        return 0

    def merge(self, other):
        self.slots = [a + b for a, b in zip(self.slots, other.slots)]
        self.total += other.total
        return self

    def to_dict(self):
        last = max((i for i, n in enumerate(self.slots) if n), default=-1)
        return {**self.labels, "unit": self.unit, "count": self.count, "total": self.total,
                "mean": round(self.mean, 3), "p50": self.percentile(50),
                "p99": self.percentile(99),
                "buckets": [{"low": bucket_bounds(i)[0], "high": bucket_bounds(i)[1],
                             "count": self.slots[i]} for i in range(last + 1)],
                **self.extra}


def _stars(val, val_max, width):
    n = min(val, val_max) * width // val_max if val_max else 0
    return "*" * n + " " * (width - n) + ("+" if val > val_max else "")


def format_log2(hist):
    """BCC's print_log2_hist: '     usecs               : count    distribution' etc."""
    vals = hist.slots
    idx_max = max((i for i, v in enumerate(vals) if v > 0), default=-1)
    if idx_max < 0:
        return ""
    val_max = max(vals)
    wide = idx_max > 32
    stars = 20 if wide else 40
    width = 20 if wide else 10
    lines = ["%*s%-*s : count    distribution" % (15 if wide else 5, "", 29 if wide else 19,
                                                   hist.unit)]
    for i in range(idx_max + 1):
        low, high = bucket_bounds(i)
        lines.append("%*d -> %-*d : %-8d |%s|" % (width, low, width, high, vals[i],
                                                  _stars(vals[i], val_max, stars)))
    return "\n".join(lines) + "\n"


def format_linear(slots, unit, base=0, step=1):
    """libbpf-tools' print_linear_hist: one row per value from the first to the last non-zero
    slot, e.g. runqlen's '        1          : 42       |****   |'."""
    used = [i for i, v in enumerate(slots) if v > 0]
    if not used:
        return ""
    val_max = max(slots)
    lines = ["     %-13s : count     distribution" % unit]
    for i in range(used[0], used[-1] + 1):
        lines.append("        %-10d : %-8d |%s|" % (base + i * step, slots[i],
                                                    _stars(slots[i], val_max, 40)))
    return "\n".join(lines) + "\n"
