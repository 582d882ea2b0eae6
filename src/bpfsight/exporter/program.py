"""`bpfsight run PROG --exporter ADDR`: a user's own program's maps served as Prometheus metrics,
from the same readings `run` prints (userprog.Program.snapshot, decoded from BTF).

- a table map: one gauge per numeric value field, `bpfsight_run_MAP_FIELD` (`bpfsight_run_MAP`
  for a scalar value), labelled by the key's fields (`key` for a scalar key) and the value's
  text fields (a comm);
- a histogram map: a Prometheus histogram `bpfsight_run_MAP` with the log2 slots as buckets
  (le 2^(i+1): slot i holds values up to 2^(i+1) - 1) and the exact total as its sum;
- `.bss`/`.data` globals: a gauge each, `bpfsight_run_NAME`.
Gauges, not counters: a user's map may hold anything, and Prometheus' rate() works on gauges
that only grow. Stack lists are left out of labels (their cardinality is unbounded)."""
import re

from . import metrics

PREFIX = "bpfsight_run"


def metric_name(*parts):
    return re.sub(r"[^a-zA-Z0-9_]", "_", "_".join(p for p in parts if p)).strip("_")


class ProgramCollector:
    """The exporter's collector interface (name, obj, reads, families) over a Program."""
    name = "run"

    def __init__(self, program):
        self.program = program
        self.obj = program.obj
        self.reads = []

    def families(self):
        for reading in self.program.snapshot():
            yield from families_of(reading)


def families_of(reading):
    """Metric families of one map reading (see userprog)."""
    where = reading["map"]
    if reading["kind"] == "globals":
        for var, value in reading["values"].items():
            if isinstance(value, (int, float)):
                yield metrics.gauge(metric_name(PREFIX, var),
                                    f"Global {var} of the program.", value=value)
        return
    rows = reading["rows"]
    if not rows:
        return
    name = metric_name(PREFIX, where)
    if reading["kind"] == "hist":
        labels = _label_names(rows[0]["key"], {k: v for k, v in rows[0].items()
                                               if k not in ("key", "hist")})
        fam = metrics.histogram(name, f"Histogram map {where} of the program (log2 "
                                "buckets).", labels=labels)
        for row in rows:
            extra = {k: v for k, v in row.items() if k not in ("key", "hist")}
            fam.add_histogram(_label_values(row["key"], extra), *_buckets(row["hist"]))
        yield fam
        return
    first = rows[0]["value"]
    numeric = [k for k, v in first.items() if isinstance(v, (int, float))] \
        if isinstance(first, dict) else [None]
    for field in numeric:
        text = {k: v for k, v in first.items() if isinstance(v, str)} \
            if isinstance(first, dict) else {}
        fam = metrics.gauge(metric_name(name, field), f"Map {where}"
                            + (f", field {field}" if field else "") + ", of the program.",
                            labels=_label_names(rows[0]["key"], text))
        for row in rows:
            value = row["value"][field] if field else row["value"]
            texts = {k: row["value"][k] for k in text}
            fam.add(_label_values(row["key"], texts), value)
        yield fam


def _flat(key):
    if isinstance(key, dict):
        out = {}
        for k, v in key.items():
            if isinstance(v, dict):
                out.update({f"{k}_{kk}": vv for kk, vv in _flat(v).items()})
            elif not isinstance(v, list):
                out[k] = v
        return out
    return {"key": key}


def _label_names(key, extra):
    return [metric_name(k) for k in {**_flat(key), **extra}]


def _label_values(key, extra):
    return [str(v) for v in {**_flat(key), **extra}.values()]


def _buckets(hist):
    """(buckets, sum) of a Log2Histogram for Family.add_histogram."""
    buckets, seen = [], 0
    for i, n in enumerate(hist.slots):
        seen += n
        buckets.append((metrics.go_float(1 << (i + 1)), seen))
    buckets.append(("+Inf", seen))
    return buckets, float(hist.total)
