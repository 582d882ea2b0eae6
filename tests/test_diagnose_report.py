"""The diagnose report's renderers on hand-written reports (no BPF): the wait-for graph in the
HTML page (inline SVG, drawn by headless Chromium) and the terminal text. The report's shape is
copied from a real `bpfsight diagnose --json` run (gzip in a pipe), cut down by hand."""
import copy
import re
import struct
import zlib

import pytest

from browser import dump_dom, png_summary, screenshot

from bpfsight.report import waitgraph
from bpfsight.report.diagnose import html, terminal

EXTERNAL = re.compile(r'(src|href)\s*=\s*["\']?https?:')

# web waits for db (a pipe), db's threads wait for each other (a lock), db reads a disk; db
# also waits a little for web (back edge); evil (a comm that is markup) is not a target and
# waits on web over the network.
REPORT = {
    "target": {"pids": [100], "cgroup": None, "host": False, "comms": {"100": "web"},
               "threads": 3},
    "duration_s": 5.0,
    "time_breakdown": {"on_cpu": 0.6, "runqueue": 0.4, "disk": 0.0, "network": 0.0,
                       "lock": 0.0, "ipc": 3.0, "memory": 0.0, "sleep": 0.8, "other": 0.2},
    "findings": [{"resource": "ipc", "severity": "bottleneck",
                  "summary": "waiting on pid 200 (db) 75% of its busy time",
                  "evidence": {"peers": [{"pid": 200, "comm": "db", "seconds": 3.0,
                                          "meanwhile": {"cause": "lock", "share": 0.5}}]}},
                 {"resource": "cpu", "severity": "ok", "summary": "little run-queue wait",
                  "evidence": {}}],
    "verdict": {"bottleneck": "ipc", "summary": "IPC is the bottleneck: waiting on pid 200 (db)",
                "knot": {"nodes": ["pid:200"], "what": "lock"}, "confidence": "normal"},
    "checks": [{"name": "on_cpu <= CPUs x window", "measured": 0.6, "expected": 10.0,
                "tolerance": 0.2, "ok": True, "detail": "2 CPUs x 5.00 s"},
               {"name": "host on_cpu = /proc/stat busy", "measured": 1.4971, "expected": 0.01,
                "tolerance": 0.3, "ok": False,
                "detail": "every thread's on-CPU time against the CPUs' busy time"}],
    "wait_for": {
        "nodes": [
            {"id": "pid:100", "kind": "process", "pid": 100, "comm": "web", "target": True,
             "on_cpu_s": 0.6, "accounted_s": 5.0},
            {"id": "pid:200", "kind": "process", "pid": 200, "comm": "db", "target": False,
             "on_cpu_s": 1.1, "accounted_s": 4.0},
            {"id": "cpu", "kind": "resource"},
            {"id": "idle", "kind": "resource"},
            {"id": "disk", "kind": "resource"},
            {"id": "pid:300", "kind": "process", "pid": 300, "comm": "<script>x</script>",
             "target": False, "on_cpu_s": 0.0, "accounted_s": 0.3},
        ],
        "edges": [
            {"from": "pid:100", "to": "pid:200", "cause": "ipc", "seconds": 3.0},
            {"from": "pid:200", "to": "pid:200", "cause": "lock", "seconds": 1.5},
            {"from": "pid:200", "to": "disk", "cause": "disk", "seconds": 1.0},
            {"from": "pid:100", "to": "idle", "cause": "sleep", "seconds": 0.8},
            {"from": "pid:100", "to": "cpu", "cause": "runqueue", "seconds": 0.4},
            {"from": "pid:300", "to": "pid:100", "cause": "network", "seconds": 0.3},
            {"from": "pid:200", "to": "pid:100", "cause": "ipc", "seconds": 0.2},
        ],
        "chains": [{"steps": [
            {"pid": 100, "comm": "web", "for": "pid:200", "cause": "ipc", "seconds": 3.0,
             "share": 0.6},
            {"pid": 200, "comm": "db", "for": "pid:200", "cause": "lock", "seconds": 1.5,
             "share": 0.375}],
            "knot": {"nodes": ["pid:200"], "what": "lock"}}],
    },
}
EDGES = REPORT["wait_for"]["edges"]
NODES = REPORT["wait_for"]["nodes"]


def svg_of(page):
    m = re.search(r'<div id="waitfor">.*?(<svg.*?</svg>)', page, re.S)
    assert m, "no wait-for SVG in the page"
    return m.group(1)


def node_group(svg, node_id):
    m = re.search(rf'<g class="([^"]*)" data-id="{re.escape(node_id)}">(.*?)</g>', svg, re.S)
    assert m, node_id
    return m.group(1).split(), m.group(2)


def edge_group(svg, edge):
    m = re.search(rf'<g class="([^"]*)" data-from="{re.escape(edge["from"])}" '
                  rf'data-to="{re.escape(edge["to"])}" data-cause="{edge["cause"]}"([^>]*)>'
                  r'(.*?)</g>', svg, re.S)
    assert m, edge
    return m.group(1).split(), m.group(2), m.group(3)


def test_every_node_and_edge_is_drawn():
    svg = svg_of(html(REPORT))
    assert svg.count('class="wf-node ') == len(NODES)
    for n in NODES:
        classes, body = node_group(svg, n["id"])
        if n["kind"] == "process":
            assert "wf-process" in classes and "<rect" in body
            name = f'{n["comm"]} ({n["pid"]})'.replace("<", "&lt;").replace(">", "&gt;")
            assert f"<title>{name}" in body
            assert ("wf-target" in classes) == n["target"]
        else:
            assert "wf-resource" in classes and "<ellipse" in body and f">{n['id']}<" in body
    assert svg.count('class="wf-edge') == len(EDGES)
    for e in EDGES:
        edge_group(svg, e)
        assert f'>{e["cause"]} {e["seconds"]:.2f} s</text>' in svg


def test_targets_first_then_by_distance():
    place = waitgraph.layout(NODES, EDGES)
    column = {i: c for i, (c, _) in place.items()}
    # web is the target; db, cpu and idle are one wait away, the disk two; evil waits on web
    # but nothing from the target reaches it
    assert column == {"pid:100": 0, "pid:200": 1, "cpu": 1, "idle": 1, "disk": 2, "pid:300": 3}
    assert waitgraph.layout(NODES, EDGES) == place  # the same report, the same picture


def test_knot_is_marked_and_named():
    page = html(REPORT)
    svg = svg_of(page)
    classes, body = node_group(svg, "pid:200")
    assert "wf-knot" in classes and 'class="wf-knot-ring"' in body and "#d62728" in body
    assert svg.count('class="wf-knot-ring"') == 1
    assert '<p class="knot">knot: db (200) (lock)</p>' in page


def test_self_wait_is_a_loop_on_its_box():
    svg = svg_of(html(REPORT))
    classes, _, body = edge_group(svg, EDGES[1])
    assert "wf-self" in classes
    start = re.search(r'd="M([\d.]+),([\d.]+) C', body).groups()
    tip = re.search(r'points="([\d.]+),([\d.]+) ', body).groups()
    # both ends sit on the top of db's box, and the curve rises above it
    _, box = node_group(svg, "pid:200")
    top = float(re.search(r'<rect x="[\d.]+" y="([\d.]+)"', box).group(1))
    assert float(start[1]) == pytest.approx(top) and float(tip[1]) == pytest.approx(top)
    assert svg.count('class="wf-edge wf-self"') == 1


def test_an_arrow_past_a_column_goes_round_its_boxes():
    svg = svg_of(html(REPORT))
    # evil (last column) waits on web (first): straight, it would cross the cpu and disk
    _, _, body = edge_group(svg, EDGES[5])
    path = re.search(r' d="([^"]*)"', body).group(1)
    ys = [float(y) for y in re.findall(r",(-?[\d.]+)", path)]
    lowest_box = max(float(y) + waitgraph.BOX_H
                     for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)"', svg))
    lowest_ellipse = max(float(cy) + waitgraph.BOX_H / 2
                         for cy in re.findall(r'<ellipse cx="[\d.]+" cy="([\d.]+)"', svg))
    assert path.count(" C") == 3 and max(ys) > max(lowest_box, lowest_ellipse)
    # an arrow to the next column goes straight there
    _, _, body = edge_group(svg, EDGES[0])
    assert re.search(r' d="([^"]*)"', body).group(1).count(" C") == 1


def test_idle_waits_are_faint_and_thickness_follows_seconds():
    svg = svg_of(html(REPORT))
    classes, attrs, _ = edge_group(svg, EDGES[3])
    assert "wf-idle" in classes and "stroke-dasharray" in attrs

    def width(edge):
        return float(re.search(r'stroke-width="([\d.]+)"', edge_group(svg, edge)[2]).group(1))
    low, high = waitgraph.MIN_STROKE, waitgraph.MAX_STROKE
    for e in EDGES:
        # a square-root scale from the thinnest stroke to the thickest (the heaviest wait);
        # 0.05: the width is written with one decimal
        assert width(e) == pytest.approx(low + (high - low) * (e["seconds"] / 3.0) ** 0.5,
                                         abs=0.05), e


def test_text_is_escaped():
    page = html(REPORT)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;x&lt;/script&gt; (300)" in page


def test_chain_is_listed_under_the_graph():
    page = html(REPORT)
    chain = re.search(r'<ol class="chain">(.*?)</ol>', page, re.S).group(1)
    assert re.findall(r"<li>(.*?)</li>", chain) == [
        "pid 100 (web): ipc wait for pid:200, 3.00 s (60% of its time)",
        "pid 200 (db): lock wait for pid:200, 1.50 s (38% of its time)"]
    assert page.index("</svg>", page.index('id="waitfor"')) < page.index('<ol class="chain">')


def big_report(processes):
    """`processes` targets that each waited for the one before (the first for the disk), and
    all of them a little idle time: a wide report the drawing has to cut down."""
    report = copy.deepcopy(REPORT)
    nodes = [{"id": "disk", "kind": "resource"}, {"id": "idle", "kind": "resource"}]
    edges = []
    for p in range(1, processes + 1):
        nodes.append({"id": f"pid:{p}", "kind": "process", "pid": p, "comm": f"worker{p}",
                      "target": True, "on_cpu_s": 0.1, "accounted_s": 5.0})
        edges.append({"from": f"pid:{p}", "to": f"pid:{p - 1}" if p > 1 else "disk",
                      "cause": "ipc" if p > 1 else "disk", "seconds": 4.0 - p / 100})
        edges.append({"from": f"pid:{p}", "to": "idle", "cause": "sleep", "seconds": 0.5})
    report["wait_for"] = {"nodes": nodes, "edges": edges, "chains": []}
    report["verdict"] = {k: v for k, v in report["verdict"].items() if k != "knot"}
    return report


def test_a_big_graph_is_cut_and_says_what_was_left_out():
    report = big_report(38)  # 40 nodes, 76 edges
    page = html(report)
    svg = svg_of(page)
    shown = int(re.search(r'data-nodes="(\d+)"', svg).group(1))
    drawn_edges = int(re.search(r'data-edges="(\d+)"', svg).group(1))
    assert shown == svg.count('class="wf-node ') == waitgraph.MAX_NODES
    assert drawn_edges == svg.count('class="wf-edge') <= waitgraph.MAX_EDGES
    assert (f"Not drawn: {40 - shown} of 40 nodes and {76 - drawn_edges} of 76 edges"
            in page)
    # the busy waits go in before the idle ones: 29 processes, each waiting on the one before
    # (the first on the disk), fill the room, and no idle wait gets in
    assert svg.count('class="wf-edge"') == drawn_edges == shown - 1
    assert 'data-id="pid:29"' in svg and 'data-id="pid:30"' not in svg


def test_no_external_resources():
    for report in (REPORT, big_report(38)):
        page = html(report)
        assert not EXTERNAL.search(page)
        assert "<script" not in page.lower() and "@import" not in page


def test_report_without_a_graph_has_no_section():
    old = {k: v for k, v in REPORT.items() if k != "wait_for"}
    old["verdict"] = {k: v for k, v in REPORT["verdict"].items() if k != "knot"}
    page = html(old)
    assert 'id="waitfor"' not in page and "Wait-for graph" not in page
    assert 'id="breakdown"' in page
    assert "Wait-for chain" not in terminal(old)


def test_a_graph_with_nothing_in_it_says_so():
    report = copy.deepcopy(REPORT)
    report["wait_for"] = {"nodes": [], "edges": [], "chains": []}
    page = html(report)
    assert 'id="waitfor"' in page and "No wait was heavy enough to draw." in page
    assert "<svg" not in page[page.index('id="waitfor"'):page.index('id="flamegraph"')]


def png_pixels(path):
    """(width, height, rows of RGB(A) tuples) of an 8-bit RGB or RGBA, non-interlaced PNG
    (Chromium's screenshots), with the five row filters undone."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + length])
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else
                                      up if pb <= pc else corner)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def test_chromium_draws_the_graph(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(html(REPORT))
    dom = dump_dom(page)
    graph = svg_of(dom)
    assert graph.count('class="wf-node ') == len(NODES)
    assert graph.count('class="wf-edge') == len(EDGES)
    assert "&lt;script&gt;" in graph and "<script" not in dom.lower()

    # the graph alone on a page, so that the screenshot is of the drawing
    alone = tmp_path / "graph.html"
    alone.write_text(f'<!doctype html><html><body style="margin:0">{graph}</body></html>')
    shot = screenshot(alone, tmp_path / "graph.png", size=(1200, 500))
    width, height, distinct = png_summary(shot)
    assert (width, height) == (1200, 500) and distinct > 50
    _, _, rows = png_pixels(shot)
    pixels = [p for row in rows for p in row]
    # the process boxes' fill (#eef2f8) and the knot's red ring (#d62728) are on screen: three
    # boxes, 190 x 44 less their outline (half, to be safe), shrunk with the SVG to the window
    scale = min(1.0, 1200 / int(re.search(r'<svg[^>]* width="(\d+)"', graph).group(1)))
    box_fill = sum(p == (0xee, 0xf2, 0xf8) for p in pixels)
    assert box_fill > 3 * 0.5 * (waitgraph.BOX_W * waitgraph.BOX_H) * scale ** 2, box_fill
    assert sum(p == (0xd6, 0x27, 0x28) for p in pixels) > 200


def test_terminal_prints_the_chain_and_failed_checks():
    out = terminal(REPORT)
    lines = out.splitlines()
    chain = lines.index("Wait-for chain (each step: the heaviest non-idle use of its time):")
    assert lines[chain + 1:chain + 4] == [
        "  pid 100 (web): ipc wait for pid:200, 3.00 s (60% of its time)",
        "  pid 200 (db): lock wait for pid:200, 1.50 s (38% of its time)",
        "  knot: pid:200 (lock)"]
    failed = lines.index("Accounting checks that failed (the verdict is less certain):")
    assert lines[failed + 1].startswith("  ✗ host on_cpu = /proc/stat busy: measured 1.4971, "
                                        "expected 0.01 ± 0.3")
    assert "on_cpu <= CPUs x window" not in out  # a check that passed is not news
    assert max(map(len, lines)) <= 100


def test_terminal_without_failed_checks_says_nothing_of_them():
    report = copy.deepcopy(REPORT)
    for c in report["checks"]:
        c["ok"] = True
    assert "Accounting checks" not in terminal(report)


def test_python_section_in_both_renderings():
    """A CPython target's blocked lines (diagnose/python.py) show in the text and the page,
    escaped, and not at all for a report without them."""
    report = copy.deepcopy(REPORT)
    report["python"] = {"interpreter": "CPython 3.11 (/usr/bin/python3.11)", "blocked_at": [
        {"frame": "waiter (locks.py:20)", "callers": ["Thread.run (threading.py:975)"],
         "state": "S", "seconds": 4.12},
        {"frame": "<module> (app.py:3)", "callers": [], "state": "D", "seconds": 0.5}]}
    text = terminal(report)
    assert "Where its Python code blocked (CPython 3.11" in text
    assert "4.12 s S  waiter (locks.py:20)  ← Thread.run (threading.py:975)" in text
    page = html(report)
    assert "waiter (locks.py:20)" in page and "&lt;module&gt; (app.py:3)" in page
    assert "Python code blocked" not in terminal(REPORT) + html(REPORT)
