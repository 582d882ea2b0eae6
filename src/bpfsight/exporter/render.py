"""Prometheus text and OpenMetrics bodies of the exporter's families (metrics.Family), byte for
byte as prometheus_client's encoders write them (a test compares the two), at a fraction of the
cost: the label text of a series is built once and kept. prometheus_client escapes and validates
every label of every sample on every scrape: ~1,000 samples took 25 ms of the exporter's CPU per
scrape, more than reading and decoding every map once the maps were keyed by label set
(issue 19). Every name the exporter makes is in the legacy character set, so no format or
escaping scheme a scraper asks for changes the body, only the content type."""
from .metrics import number

TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def choose_format(accept):
    """(openmetrics?, content type) for an Accept header, as Prometheus negotiates: OpenMetrics
    where asked for, text 1.0.0 where asked for, else text 0.0.4."""
    for accepted in (accept or "").split(","):
        media, *params = [p.strip() for p in accepted.split(";")]
        version = next((p.split("=", 1)[1] for p in params if p.startswith("version=")), "")
        if media == "application/openmetrics-text" and (not version or _at_least_1(version)):
            return True, OPENMETRICS
        if media == "text/plain" and _at_least_1(version):
            return False, TEXT_1_0_0
    return False, TEXT_0_0_4


def _at_least_1(version):
    try:
        return int(version.split(".", 1)[0]) >= 1
    except ValueError:
        return False


class Encoder:
    """encode(families, openmetrics) -> bytes."""

    def __init__(self, limit=50_000):
        self.limit = limit
        self._labels = {}  # (label names, values) -> (label text, bucket prefix, bucket suffix)

    def encode(self, families, openmetrics):
        out = []
        write = out.append
        for m in families:
            name, doc = m.name, m.documentation.replace("\\", r"\\").replace("\n", r"\n")
            if openmetrics:
                doc = doc.replace('"', r'\"')
            elif m.type == "counter":
                name += "_total"
            write(f"# HELP {name} {doc}\n# TYPE {name} {m.type}\n")
            names = m.label_names
            if m.type == "histogram":
                for values, buckets, total in m.series:
                    text, before, after = self._texts(names, values)
                    for le, count in buckets:
                        write(f"{m.name}_bucket{before}{le}{after} {number(count)}\n")
                    write(f"{m.name}_count{text} {number(buckets[-1][1])}\n"
                          f"{m.name}_sum{text} {number(total)}\n")
            else:
                sample = m.name + "_total" if m.type == "counter" else m.name
                for values, value in m.series:
                    write(f"{sample}{self._texts(names, values)[0]} {number(value)}\n")
        if openmetrics:
            write("# EOF\n")
        return "".join(out).encode()

    def _texts(self, names, values):
        """The label text of a series, and the text of its buckets' labels around the le
        value: labels are written sorted by name, as prometheus_client writes them, so le
        can fall between two of them."""
        key = (names, values)
        texts = self._labels.get(key)
        if texts is None:
            if len(self._labels) >= self.limit:
                self._labels.clear()
            pairs = sorted(zip(names, values))
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
            lower = [f'{k}="{_escape(v)}",' for k, v in pairs if k < "le"]
            upper = [f',{k}="{_escape(v)}"' for k, v in pairs if k > "le"]
            texts = self._labels[key] = ("{" + text + "}" if text else "",
                                         "{" + "".join(lower) + 'le="', '"' + "".join(upper) + "}")
        return texts


def _escape(value):
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
