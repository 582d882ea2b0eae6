import json
import re

import pytest

from browser import read_png_unfiltered
from helpers import CpuHogs, run_bpfsight

from bpfsight.report.histogram import Log2Histogram, format_log2


def svg_cells(svg):
    """[(column label, bucket label, count)] of every drawn cell."""
    return [(m.group(2), m.group(3), int(m.group(1))) for m in re.finditer(
        r'data-count="(\d+)"><title>(.*?): (\S+) \w+: \d+</title>', svg)]


@pytest.mark.bpf
def test_runqlat_intervals_become_columns_with_their_counts(tmp_path):
    with CpuHogs(3):  # a run queue, so there is latency to see
        res = run_bpfsight("runqlat", "--json", "1", "3")
    assert res.returncode == 0, res.stderr
    src = tmp_path / "rq.ndjson"
    src.write_text(res.stdout)
    intervals = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert len(intervals) == 3
    out = tmp_path / "rq.svg"
    res = run_bpfsight("heatmap", src, "-o", out)
    assert res.returncode == 0, res.stderr
    cells = svg_cells(out.read_text())
    # every non-empty bucket of every interval is one cell with the same count
    want = sorted((str(i), f"{b['low']}-{b['high']}", b["count"])
                  for i, rec in enumerate(intervals) for b in rec["buckets"] if b["count"])
    assert sorted(cells) == want
    assert sum(c for _, _, c in cells) == sum(rec["count"] for rec in intervals)
    html = tmp_path / "rq.html"
    assert run_bpfsight("heatmap", src, "-o", html).returncode == 0
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<script src" not in text
    assert sorted(svg_cells(text)) == want


def test_text_histograms_with_timestamps(tmp_path):
    hists = [[0, 3, 5, 0, 1], [2, 0, 0, 7]]
    text = "".join(f"\n12:00:0{i}\n" + format_log2(Log2Histogram(h)) for i, h in enumerate(hists))
    src = tmp_path / "h.txt"
    src.write_text("Tracing run queue latency... Hit Ctrl-C to end.\n" + text)
    out = tmp_path / "h.svg"
    assert run_bpfsight("heatmap", src, "-o", out).returncode == 0
    want = sorted((f"12:00:0{i}", f"{0 if r == 0 else 1 << r}-{(1 << (r + 1)) - 1}", c)
                  for i, h in enumerate(hists) for r, c in enumerate(h) if c)
    assert sorted(svg_cells(out.read_text())) == want
    res = run_bpfsight("heatmap", src)  # terminal rendering: a row per used bucket
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 1 + 5


def test_events_are_binned_by_time_and_log2_latency(tmp_path):
    # biosnoop-like NDJSON: (time_s, lat_ms)
    events = [(0.1, 0.5), (0.2, 0.6), (0.9, 3.0), (1.5, 0.5), (2.7, 40.0)]
    src = tmp_path / "ev.ndjson"
    src.write_text("".join(json.dumps({"time_s": t, "comm": "dd", "lat_ms": lat}) + "\n"
                           for t, lat in events))
    out = tmp_path / "ev.svg"
    assert run_bpfsight("heatmap", src, "-o", out).returncode == 0
    # lat in usecs: 500 and 600 -> 256-511 / 512-1023, 3000 -> 2048-4095, 40000 -> 32768-65535
    assert sorted(svg_cells(out.read_text())) == sorted([
        ("0.0", "256-511", 1), ("0.0", "512-1023", 1), ("0.0", "2048-4095", 1),
        ("1.0", "256-511", 1), ("2.0", "32768-65535", 1)])
    table = tmp_path / "ev.txt"
    table.write_text("TIME(s)     COMM  PID  DISK  T SECTOR BYTES  LAT(ms)\n" + "".join(
        f"{t:<11} dd    42   vda   R 1000   4096   {lat}\n" for t, lat in events))
    assert run_bpfsight("heatmap", table, "-o", out, "-i", "2").returncode == 0
    assert sum(c for _, _, c in svg_cells(out.read_text())) == len(events)


def test_png_has_one_block_per_cell(tmp_path):
    src = tmp_path / "h.ndjson"
    recs = [{"unit": "usecs", "buckets": [{"low": 4, "high": 7, "count": 9},
                                          {"low": 16, "high": 31, "count": 1}]},
            {"unit": "usecs", "buckets": [{"low": 8, "high": 15, "count": 4}]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "h.png"
    assert run_bpfsight("heatmap", src, "-o", out).returncode == 0
    width, height, rows = read_png_unfiltered(out)
    assert (width, height) == (2 * 8, 3 * 8)  # 2 intervals x buckets 4-7 .. 16-31
    colored = {(x // 8, y // 8) for y, row in enumerate(rows) for x, px in enumerate(row)
               if px != (255, 255, 255)}
    # top row is the largest bucket: (col 0, 16-31), (col 1, 8-15), (col 0, 4-7)
    assert colored == {(0, 0), (1, 1), (0, 2)}
    darkest = min(rows[2 * 8][0], rows[0][0])  # the 9-count cell is darker than the 1
    assert darkest == rows[2 * 8][0]


@pytest.mark.parametrize("case", ["missing", "no-latency", "extension", "interval"])
def test_bad_input_exits_2_with_one_line(tmp_path, case):
    src = tmp_path / "x.ndjson"
    src.write_text('{"time_s": 1, "comm": "a"}\n')
    args = {"missing": [tmp_path / "nope"], "no-latency": [src],
            "extension": [src, "-o", tmp_path / "x.gif"], "interval": [src, "-i", "0"]}[case]
    res = run_bpfsight("heatmap", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
