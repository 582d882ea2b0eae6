"""Latency heat maps: time on x, log2 latency bucket on y, colour = how many fell there.

Input is what bpfsight's tools already print: per-interval histograms (NDJSON from --json, or
BCC's text layout) or per-event records (NDJSON or a text table with a header, e.g. biosnoop's
TIME(s) ... LAT(ms)). Output: a terminal rendering, SVG, self-contained HTML, or PNG."""
import html
import json
import math
import re
import struct
import zlib

_HIST_HEADER = re.compile(r"^\s*(\w+)\s+:\s+count\s+distribution")
_HIST_ROW = re.compile(r"^\s*(\d+)\s+->\s+(\d+)\s+:\s+(\d+)")
_TIME_LINE = re.compile(r"^\d\d:\d\d:\d\d$")
_LABEL_LINE = re.compile(r"^\s*\S+\s+=\s+\S")
# time fields, most specific first, with their scale to seconds
TIME_FIELDS = (("time_s", 1), ("TIME(s)", 1), ("ts_ns", 1e-9), ("ts_us", 1e-6),
               ("ts_ms", 1e-3), ("timestamp", 1), ("time", 1), ("ts", 1))
_LAT_NAME = re.compile(r"^(lat|latency|delta|delay|duration|dur)(?:[_(]?(ns|us|ms|s)\)?)?$", re.I)
_UNIT_US = {"ns": 1e-3, "us": 1, "usecs": 1, "ms": 1e3, "msecs": 1e3, "s": 1e6, "nsecs": 1e-3}


class HeatMap:
    """counts[column][row]; row i is the log2 bucket [2^i, 2^(i+1)) (0 and 1 in row 0)."""

    def __init__(self, columns, counts, unit, column_unit="interval"):
        self.columns = list(columns)     # x labels
        self.counts = [list(c) for c in counts]
        self.unit = unit
        self.column_unit = column_unit
        self.rows = max((len(c) for c in self.counts), default=0)
        for c in self.counts:
            c.extend([0] * (self.rows - len(c)))

    @property
    def total(self):
        return sum(map(sum, self.counts))

    @property
    def max_count(self):
        return max((max(c) for c in self.counts if c), default=0)

    def used_rows(self):
        """(first, last) rows with any count: the rendered band."""
        used = [r for r in range(self.rows) if any(c[r] for c in self.counts)]
        return (used[0], used[-1]) if used else (0, -1)


def bucket_label(row):
    low, high = (1 << (row + 1)) >> 1, (1 << (row + 1)) - 1
    return f"{0 if low == high else low}-{high}"


def log2_row(value):
    return max(int(value), 1).bit_length() - 1


# --- parsing ---

def _lines_of(text):
    return [ln.rstrip("\n") for ln in text.splitlines()]


def parse(text, interval=1.0, time_field=None, latency_field=None, match=None):
    """A HeatMap from any of the supported inputs (detected from the content)."""
    lines = [ln for ln in _lines_of(text) if ln.strip()]
    if not lines:
        raise ValueError("no input")
    if lines[0].lstrip().startswith("{"):
        records = []
        for n, ln in enumerate(lines, 1):
            try:
                records.append(json.loads(ln))
            except json.JSONDecodeError:
                raise ValueError(f"line {n}: not JSON: {ln[:60]!r}") from None
        records = [r for r in records if _matches(r, match)]
        hists = [r for r in records if isinstance(r.get("buckets"), list)]
        if hists:
            return _from_hist_records(hists)
        return _from_events(records, interval, time_field, latency_field)
    if any(_HIST_HEADER.match(ln) for ln in lines):
        return _from_hist_text(lines)
    return _from_table(lines, interval, time_field, latency_field)


def _matches(rec, match):
    return not match or all(str(rec.get(k)) == v for k, v in match.items())


def _series_index(label_key, seen):
    """Histograms with the same labels repeat once per interval: the n-th one is interval n."""
    seen[label_key] = seen.get(label_key, -1) + 1
    return seen[label_key]


def _from_hist_records(records):
    columns, seen, unit = {}, {}, records[0].get("unit", "usecs")
    for rec in records:
        labels = tuple(sorted((k, str(v)) for k, v in rec.items()
                              if k not in ("buckets", "count", "total", "mean", "p50", "p99",
                                           "unit", "ts", "time")))
        col = rec.get("ts", rec.get("time")) or _series_index(labels, seen)
        counts = columns.setdefault(col, [])
        for b in rec["buckets"]:
            row = log2_row(b["high"])
            counts.extend([0] * (row + 1 - len(counts)))
            counts[row] += int(b["count"])
    keys = list(columns)
    return HeatMap(keys, [columns[k] for k in keys], unit)


def _from_hist_text(lines):
    columns, seen, unit, label, stamp, current = {}, {}, "usecs", "", None, None
    for ln in lines:
        if _TIME_LINE.match(ln.strip()):
            stamp = ln.strip()
        elif _LABEL_LINE.match(ln) and not _HIST_ROW.match(ln):
            label = ln.strip()
        elif _HIST_HEADER.match(ln):
            unit = _HIST_HEADER.match(ln).group(1)
            col = stamp if stamp else _series_index(label, seen)
            current = columns.setdefault(col, [])
        elif _HIST_ROW.match(ln) and current is not None:
            _, high, count = (int(x) for x in _HIST_ROW.match(ln).groups())
            row = log2_row(high)
            current.extend([0] * (row + 1 - len(current)))
            current[row] += count
    keys = list(columns)
    return HeatMap(keys, [columns[k] for k in keys], unit)


def _pick_fields(names, time_field, latency_field):
    if time_field:
        scale = dict(TIME_FIELDS).get(time_field, 1)
        tf = (time_field, scale)
    else:
        tf = next(((n, s) for n, s in TIME_FIELDS if n in names), None)
    if latency_field:
        lf = latency_field
    else:
        lf = next((n for n in names if _LAT_NAME.match(n)), None)
    if not tf or tf[0] not in names:
        raise ValueError(f"no time field among {sorted(names)} (use --time-field)")
    if not lf or lf not in names:
        raise ValueError(f"no latency field among {sorted(names)} (use --latency-field)")
    m = _LAT_NAME.match(lf)
    to_us = _UNIT_US.get((m.group(2) or "us").lower(), 1) if m else 1
    return tf, lf, to_us


def _bin_events(points, interval):
    """points: (seconds, usecs) pairs -> HeatMap with one column per interval."""
    if not points:
        return HeatMap([], [], "usecs", "s")
    t0 = min(t for t, _ in points)
    ncols = int((max(t for t, _ in points) - t0) // interval) + 1
    cols = [[] for _ in range(ncols)]
    for t, lat in points:
        c, row = cols[int((t - t0) // interval)], log2_row(lat)
        c.extend([0] * (row + 1 - len(c)))
        c[row] += 1
    return HeatMap([round(i * interval, 6) for i in range(ncols)], cols, "usecs", "s")


def _from_events(records, interval, time_field, latency_field):
    names = set().union(*(r.keys() for r in records)) if records else set()
    (tname, tscale), lname, to_us = _pick_fields(names, time_field, latency_field)
    points = [(float(r[tname]) * tscale, float(r[lname]) * to_us) for r in records
              if tname in r and lname in r]
    return _bin_events(points, interval)


def _from_table(lines, interval, time_field, latency_field):
    header = lines[0].split()
    (tname, tscale), lname, to_us = _pick_fields(set(header), time_field, latency_field)
    ti, li = header.index(tname), header.index(lname)
    points = []
    for ln in lines[1:]:
        parts = ln.split()
        # a wide middle column (COMM with spaces) shifts fields: take latency from the end
        try:
            t = float(parts[ti]) * tscale
            lat = float(parts[li - len(header)]) * to_us
        except (ValueError, IndexError):
            continue
        points.append((t, lat))
    return _bin_events(points, interval)


# --- rendering ---

def _heat_rgb(count, max_count):
    """White for none; light yellow to dark red by count (sqrt, so the tail stays visible)."""
    if not count:
        return (255, 255, 255)
    f = math.sqrt(count / max_count) if max_count else 0
    return (255 - int(55 * f), int(235 - 215 * f), int(120 - 110 * f))


def render_text(hm):
    shades = " .:-=+*#%@"
    first, last = hm.used_rows()
    out = [f"{hm.unit:>16} | one column per {hm.column_unit}, shade = sqrt(count) "
           f"(max {hm.max_count})"]
    for row in range(last, first - 1, -1):
        cells = "".join(shades[min(len(shades) - 1, math.ceil(
            (len(shades) - 1) * math.sqrt(c[row] / hm.max_count)))] if c[row] else " "
            for c in hm.counts)
        out.append(f"{bucket_label(row):>16} |{cells}")
    return "\n".join(out) + "\n"


def render_svg(hm, title="Latency Heat Map", cell_w=None, cell_h=14):
    first, last = hm.used_rows()
    nrows, ncols = last - first + 1, len(hm.columns)
    cell_w = cell_w or max(4, min(40, 1000 // max(ncols, 1)))
    left, top = 110, 50
    width, height = left + ncols * cell_w + 20, top + nrows * cell_h + 50
    mx = hm.max_count
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" data-total="{hm.total}">',
           '<style>text{font:11px Verdana,sans-serif}.t{font-size:16px}</style>',
           '<rect width="100%" height="100%" fill="#fff"/>',
           f'<text class="t" x="{width / 2}" y="22" text-anchor="middle">'
           f'{html.escape(title)}</text>',
           f'<text x="{width / 2}" y="{height - 10}" text-anchor="middle">time ('
           f'{html.escape(str(hm.column_unit))})</text>',
           f'<text x="12" y="{top - 8}">{html.escape(hm.unit)}</text>']
    for i, row in enumerate(range(last, first - 1, -1)):
        y = top + i * cell_h
        out.append(f'<text x="{left - 6}" y="{y + cell_h - 3}" text-anchor="end">'
                   f'{bucket_label(row)}</text>')
        for x, col in enumerate(hm.counts):
            if col[row]:
                r, g, b = _heat_rgb(col[row], mx)
                out.append(f'<rect class="cell" x="{left + x * cell_w}" y="{y}" width="{cell_w}" '
                           f'height="{cell_h}" fill="rgb({r},{g},{b})" data-count="{col[row]}">'
                           f'<title>{html.escape(str(hm.columns[x]))}: {bucket_label(row)} '
                           f'{html.escape(hm.unit)}: {col[row]}</title></rect>')
    step = max(1, ncols // 10)
    for x in range(0, ncols, step):
        out.append(f'<text x="{left + x * cell_w}" y="{top + nrows * cell_h + 14}">'
                   f'{html.escape(str(hm.columns[x]))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_html(hm, title="Latency Heat Map"):
    """The SVG inside a page that needs nothing from the network (hover shows each cell)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>body{{margin:10px;font:12px Verdana,"
            "sans-serif}}</style></head>\n<body>\n"
            f"<p>{hm.total} events in {len(hm.columns)} columns, max {hm.max_count} per cell "
            "(hover a cell for its count)</p>\n"
            f"{render_svg(hm, title)}</body></html>\n")


def render_png(hm, cell_w=8, cell_h=8):
    """A PNG of the cells only (no text): row for the largest bucket at the top."""
    first, last = hm.used_rows()
    rows = list(range(last, first - 1, -1))
    width, height = max(1, len(hm.counts) * cell_w), max(1, len(rows) * cell_h)
    raw = bytearray()
    for row in rows:
        line = bytearray([0])  # filter: none
        for col in hm.counts:
            line += bytes(_heat_rgb(col[row], hm.max_count)) * cell_w
        line += b"\xff\xff\xff" * (width - (len(line) - 1) // 3)
        raw += bytes(line) * cell_h
    if not rows:
        raw = bytearray(b"\0" + b"\xff\xff\xff" * width) * height

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))
