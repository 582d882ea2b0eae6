"""Prometheus text and OpenMetrics bodies, byte for byte as prometheus_client's encoders write
them for the families the exporter makes, at a fraction of the cost: the label text of a series
is built once and kept. prometheus_client escapes and validates every label of every sample
on every scrape: ~1,000 samples took 25 ms of the exporter's CPU per scrape, more than reading
and decoding every map once the maps were keyed by label set (issue 19). Anything this does not
write (units, exemplars, timestamps, native histograms, names outside the legacy character set,
other metric types) goes to prometheus_client's encoder whole."""
import re

from prometheus_client.utils import floatToGoString

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_TYPES = {"counter", "gauge", "histogram"}


class Encoder:
    """encode(families, openmetrics) -> bytes, or None where prometheus_client must."""

    def __init__(self, limit=50_000):
        self.limit = limit
        self._labels = {}  # tuple(labels.items()) -> '{k="v",...}'

    def encode(self, families, openmetrics):
        out = []
        for m in families:
            if m.type not in _TYPES or m.unit or not _NAME.match(m.name):
                return None
            name, doc = m.name, m.documentation.replace("\\", r"\\").replace("\n", r"\n")
            if openmetrics:
                doc = doc.replace('"', r'\"')
            elif m.type == "counter":
                name += "_total"
            out.append(f"# HELP {name} {doc}\n# TYPE {name} {m.type}\n")
            for s in m.samples:
                if s.timestamp is not None or s.exemplar or s.native_histogram:
                    return None
                if not openmetrics and s.name == m.name + "_created":
                    return None  # moved to a family of its own in text: not ours
                out.append(f"{s.name}{self._label_text(s.labels)} {floatToGoString(s.value)}\n")
        if openmetrics:
            out.append("# EOF\n")
        return "".join(out).encode()

    def _label_text(self, labels):
        key = tuple(labels.items())
        text = self._labels.get(key)
        if text is None:
            if not all(_NAME.match(k) and ":" not in k for k in labels):
                raise _Unnamed()
            if len(self._labels) >= self.limit:
                self._labels.clear()
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            text = self._labels[key] = "{" + text + "}" if text else ""
        return text


class _Unnamed(Exception):
    """A label name prometheus_client would have to escape."""


def _escape(value):
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def encode(encoder, families, ctype, fallback):
    """The body for content type ctype: encoder's, else fallback(snapshot)'s."""
    try:
        body = encoder.encode(families, ctype.startswith("application/openmetrics-text"))
    except _Unnamed:
        body = None
    return body if body is not None else fallback()
