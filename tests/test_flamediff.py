import re

import pytest

from browser import body_attr, dump_dom
from helpers import run_bpfsight

# Two profiles with known counts: c doubled, d unchanged, e vanished, f appeared.
BEFORE = {"main;work;c": 10, "main;work;d": 5, "main;e": 5}
AFTER = {"main;work;c": 20, "main;work;d": 5, "main;f": 3}


def write(path, folded):
    path.write_text("".join(f"{k} {v}\n" for k, v in folded.items()))
    return path


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "a.folded", BEFORE), write(tmp_path / "b.folded", AFTER)


def test_difffolded_lines_carry_both_counts(files):
    res = run_bpfsight("flamediff", *files)
    assert res.returncode == 0, res.stderr
    got = {ln.rsplit(" ", 2)[0]: tuple(map(int, ln.rsplit(" ", 2)[1:]))
           for ln in res.stdout.splitlines()}
    assert got == {k: (BEFORE.get(k, 0), AFTER.get(k, 0)) for k in set(BEFORE) | set(AFTER)}


def test_normalize_scales_before_to_after_total(files):
    res = run_bpfsight("flamediff", "-n", *files)
    got = {ln.rsplit(" ", 2)[0]: float(ln.rsplit(" ", 2)[1]) for ln in res.stdout.splitlines()}
    scale = sum(AFTER.values()) / sum(BEFORE.values())
    assert got == pytest.approx({k: BEFORE.get(k, 0) * scale for k in got}, abs=1e-3)


def svg_frames(svg):
    """{frame name: (value, change)} from the <title> of each frame."""
    return {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"<title>(\S+) \(([\d.]+) samples, [\d.]+%, change ([-+][\d.]+)\)</title>", svg)}


def test_svg_widths_from_after_colours_from_change(files, tmp_path):
    out = tmp_path / "d.svg"
    res = run_bpfsight("flamediff", *files, "-o", out)
    assert res.returncode == 0, res.stderr
    frames = svg_frames(out.read_text())
    assert frames["c"] == (20, +10) and frames["d"] == (5, 0) and frames["f"] == (3, +3)
    assert frames["work"] == (25, +10) and frames["all"] == (28, +8)
    assert "e" not in frames  # width 0 in AFTER
    res = run_bpfsight("flamediff", "--negate", *files, "-o", out)
    frames = svg_frames(out.read_text())
    assert frames["e"] == (5, -5) and frames["c"] == (10, +10) and "f" not in frames


def test_html_diff_renders_every_frame_in_chromium(files, tmp_path):
    out = tmp_path / "d.html"
    assert run_bpfsight("flamediff", *files, "-o", out).returncode == 0
    dom = dump_dom(out)
    # all, main, work, c, d, f
    assert body_attr(dom, "data-frames") == 6 == dom.count('class="frame')
    assert re.search(r'class="frame"[^>]*background: rgb\(255, \d+, \d+\)[^>]*>c<', dom)
    dom = dump_dom(out, "search=^[cd]$")
    assert body_attr(dom, "data-matched") == 2 and "Matched: 89.29%" in dom  # 25 of 28
    dom = dump_dom(out, "zoom=work")
    assert body_attr(dom, "data-frames") == 5  # all and main dimmed, work, c, d


@pytest.mark.parametrize("case", ["missing", "malformed", "empty", "extension"])
def test_bad_input_exits_2_with_one_line(files, tmp_path, case):
    a, b = files
    args = {"missing": [a, tmp_path / "nope"],
            "malformed": [a, write(tmp_path / "bad", {"x;y": "z"})],
            "empty": [a, write(tmp_path / "empty", {})],
            "extension": [a, b, "-o", tmp_path / "x.pdf"]}[case]
    res = run_bpfsight("flamediff", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
