"""The wait-for graph of a diagnose report (report["wait_for"]) as one inline SVG: processes as
rounded boxes, resources (the CPUs, a disk, the network, idle time...) as ellipses, "A waited T
seconds for B" as an arrow A -> B. The layout is layered left to right and deterministic (the
same report draws the same picture): the target's processes in the first column, then every
node by its distance from them. Plain data in, a string out; no scripts, no fonts, no links."""
import html as _html
import math
from collections import deque

from ..diagnose.graph import IDLE_CAUSES

# A page with hundreds of kworker boxes reads worse than a short list of what was left out.
MAX_NODES, MAX_EDGES = 30, 60

BOX_W, BOX_H = 190, 44          # a process box; a resource ellipse fits in the same slot
RESOURCE_RX = 78
COL_GAP = 170                   # room between columns for the arrows and their labels
ROW_GAP = 40                    # room above each box for a self-loop and its label
# same-column arrows bulge out sideways (down on the right, up on the left): a wide margin
# holds those of the first and last columns, and their labels, when there are any
MARGIN_X, NARROW_MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 140, 24, 50, 16
MAX_BULGE = 80
LANE_GAP = 14                   # between arrows sent round below the nodes
MIN_STROKE, MAX_STROKE = 1.2, 7.0
IDLE_COLOUR = "#aaa"


def select(wait_for, chains=(), max_nodes=MAX_NODES, max_edges=MAX_EDGES):
    """(nodes, edges) to draw: the chain's own edges first (they explain the verdict), then the
    other waits heaviest first, idle waits last (they are most of a quiet host's time and say
    least). An edge is drawn only with both its ends; nodes with no drawn edge fill what room
    is left."""
    by_id = {n["id"]: n for n in wait_for.get("nodes", [])}
    on_chain = {(f"pid:{s['pid']}", s["for"], s["cause"]) for ch in chains for s in ch["steps"]}
    order = sorted(enumerate(wait_for.get("edges", [])),
                   key=lambda ie: ((ie[1]["from"], ie[1]["to"], ie[1]["cause"]) not in on_chain,
                                   ie[1]["cause"] in IDLE_CAUSES, -ie[1]["seconds"], ie[0]))
    nodes, edges = {}, []
    for _, e in order:
        new = [n for n in dict.fromkeys((e["from"], e["to"])) if n not in nodes]
        if len(edges) >= max_edges or len(nodes) + len(new) > max_nodes:
            continue
        for n in new:
            nodes[n] = by_id.get(n) or _missing_node(n)
        edges.append(e)
    for n in sorted(by_id.values(), key=lambda n: not n.get("target")):
        if len(nodes) >= max_nodes:
            break
        nodes.setdefault(n["id"], n)
    return list(nodes.values()), edges


def _missing_node(node_id):
    # an edge may name a node the list lacks (an older or hand-made report): draw it plainly
    if node_id.startswith("pid:") and node_id[4:].isdigit():
        return {"id": node_id, "kind": "process", "pid": int(node_id[4:]), "comm": "?"}
    return {"id": node_id, "kind": "resource"}


def label(node):
    """What a node is called on the page: "comm (pid)" for a process, the id for a resource."""
    if node.get("kind") == "process":
        return f"{node.get('comm') or '?'} ({node['pid']})"
    return node["id"]


def layout(nodes, edges):
    """{id: (column, row)}: targets in column 0, then by BFS distance over the edges from
    them; nodes the targets do not reach in one column after those."""
    ids = [n["id"] for n in nodes]
    out_edges = {i: [] for i in ids}
    for e in edges:
        out_edges[e["from"]].append(e["to"])
    busy = {i: 0.0 for i in ids}   # non-idle time waited, to put the heaviest waiters on top
    total = {i: 0.0 for i in ids}
    for e in edges:
        total[e["from"]] += e["seconds"]
        if e["cause"] not in IDLE_CAUSES:
            busy[e["from"]] += e["seconds"]
    targets = [n["id"] for n in nodes if n.get("kind") == "process" and n.get("target")]
    column = dict.fromkeys(targets, 0)
    queue = deque(targets)
    while queue:
        here = queue.popleft()
        for there in out_edges[here]:
            if there not in column:
                column[there] = column[here] + 1
                queue.append(there)
    after = max(column.values(), default=-1) + 1
    for i in ids:
        column.setdefault(i, after)

    rows = {}
    for col in sorted(set(column.values())):
        members = [i for i in ids if column[i] == col]
        if col == 0 or col == after:
            members.sort(key=lambda i: (-busy[i], -total[i], i))
        else:
            # the mean row of what points here from earlier columns: fewer crossings
            def barycentre(i):
                came = [rows[e["from"]] for e in edges
                        if e["to"] == i and e["from"] in rows and column[e["from"]] < col]
                return sum(came) / len(came) if came else math.inf
            members.sort(key=lambda i: (barycentre(i), -total[i], i))
        for r, i in enumerate(members):
            rows[i] = r
    return {i: (column[i], rows[i]) for i in ids}


def svg(nodes, edges, knot_ids=(), colours=None):
    """The SVG element for the given nodes and edges (from select); knot_ids: nodes to outline
    in red; colours: cause -> stroke colour of its arrows."""
    e = _html.escape
    colours = colours or {}
    sheet = _Sheet(nodes, edges, layout(nodes, edges))
    heaviest = max((x["seconds"] for x in edges), default=0) or 1.0
    ports = _ports(edges, sheet.place, sheet.centre)
    # loops and same-column arcs between the same two nodes are nested so none hides another
    pair_seen = {}

    arrows, labels = [], []
    for index, x in enumerate(edges):
        pair = frozenset((x["from"], x["to"]))
        k = pair_seen[pair] = pair_seen.get(pair, -1) + 1
        # sqrt: a 100x heavier wait is 10x thicker, so light waits stay visible
        stroke = min(MAX_STROKE, max(MIN_STROKE, MIN_STROKE + (MAX_STROKE - MIN_STROKE)
                                     * math.sqrt(max(x["seconds"], 0) / heaviest)))
        idle = x["cause"] in IDLE_CAUSES
        colour = IDLE_COLOUR if idle else colours.get(x["cause"], "#555")
        points, (lx, ly), anchor = sheet.route(
            x["from"], x["to"], 16 * k, (ports.get((index, 0), 0.0), ports.get((index, 1), 0.0)))
        path, head = _arrow(points, stroke)
        text = f"{x['cause']} {x['seconds']:.2f} s"
        what = (f"{label_of(nodes, x['from'])} waited {x['seconds']:.2f} s for "
                f"{label_of(nodes, x['to'])} ({x['cause']})")
        classes = "wf-edge" + (" wf-idle" if idle else "") + (
            " wf-self" if x["from"] == x["to"] else "")
        style = ' stroke-dasharray="6 4" opacity="0.55"' if idle else ""
        arrows.append(
            f'<g class="{classes}" data-from="{e(x["from"])}" data-to="{e(x["to"])}" '
            f'data-cause="{e(x["cause"])}"{style}><title>{e(what)}</title>'
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{stroke:.1f}"/>'
            f'<polygon points="{head}" fill="{colour}"/></g>')
        labels.append(f'<text class="wf-label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}"'
                      f' fill="{"#777" if idle else "#333"}">{e(text)}</text>')

    knots = set(knot_ids)
    boxes = [_node_svg(n, *sheet.centre[n["id"]], n["id"] in knots) for n in nodes]
    width, height = sheet.size()
    # labels last, with a white halo, so a crossing arrow or box edge does not hide them
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="wf-graph" width="{width}" '
            f'height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" '
            f'style="max-width:100%;height:auto" font-family="system-ui,sans-serif" '
            f'font-size="12" data-nodes="{len(nodes)}" data-edges="{len(edges)}">'
            f'<g class="wf-arrows">{"".join(arrows)}</g><g class="wf-boxes">{"".join(boxes)}</g>'
            f'<g class="wf-labels" font-size="11" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{"".join(labels)}</g></svg>')


class _Sheet:
    """Where the nodes sit on the page, and how an arrow gets from one to another."""

    def __init__(self, nodes, edges, place):
        self.place = place
        self.kind = {n["id"]: n.get("kind") for n in nodes}
        self.columns = max((c for c, _ in place.values()), default=0) + 1
        last = self.columns - 1
        up_first = down_last = False
        for x in edges:
            (col, row), (col_to, row_to) = place[x["from"]], place[x["to"]]
            up_first |= col == col_to == 0 and row_to < row
            # a self-loop's label reaches past its box too
            down_last |= col == col_to == last and row_to >= row
        self.left = MARGIN_X if up_first else NARROW_MARGIN_X
        self.right = MARGIN_X if down_last else NARROW_MARGIN_X
        per_column = {}
        for c, _ in place.values():
            per_column[c] = per_column.get(c, 0) + 1
        tallest = max(per_column.values(), default=1)
        self.centre = {}
        for i, (c, r) in place.items():
            shift = (tallest - per_column[c]) * (BOX_H + ROW_GAP) / 2  # short columns centred
            self.centre[i] = (self.left + c * (BOX_W + COL_GAP) + BOX_W / 2,
                              MARGIN_TOP + shift + r * (BOX_H + ROW_GAP) + BOX_H / 2)
        self.bottom = MARGIN_TOP + tallest * (BOX_H + ROW_GAP) - ROW_GAP
        self.lanes = 0  # arrows sent round below the nodes, one lane each

    def size(self):
        width = self.left + self.right + self.columns * BOX_W + (self.columns - 1) * COL_GAP
        lanes = LANE_GAP * (self.lanes + 1) if self.lanes else 0
        return width, self.bottom + lanes + MARGIN_BOTTOM

    def half_width(self, i, dy=0.0):
        """How far right of its centre node i's side is, dy below its centre."""
        if self.kind[i] == "process":
            return BOX_W / 2
        return RESOURCE_RX * math.sqrt(max(0.0, 1 - (dy / (BOX_H / 2)) ** 2))

    def blocked(self, pts, col_a, col_b):
        """Whether the curve runs through a node of a column between its ends."""
        low, high = sorted((col_a, col_b))
        between = [i for i, (c, _) in self.place.items() if low < c < high]
        for step in range(51):
            x, y = _bezier_at(pts, step / 50)
            for i in between:
                cx, cy = self.centre[i]
                if abs(x - cx) <= BOX_W / 2 + 6 and abs(y - cy) <= BOX_H / 2 + 6:
                    return True
        return False

    def route(self, a, b, nest, ports):
        """The arrow from a to b as cubic Bezier segments (3n + 1 points), where its label goes
        and how the label is anchored. nest: how far out of the way of another arrow between
        the same two nodes; ports: offsets of its two ends below their nodes' centres."""
        (ax, ay), (bx, by) = self.centre[a], self.centre[b]
        if a == b:  # a self-wait (threads of one process waiting on each other): a loop on top
            top = ay - BOX_H / 2
            rise = 42 + nest
            pts = [(ax - 18, top), (ax - 44, top - rise), (ax + 44, top - rise), (ax + 18, top)]
            return pts, (ax + 40, top - rise * 0.55), "start"
        y1, y2 = ay + ports[0], by + ports[1]
        col_a, col_b = self.place[a][0], self.place[b][0]
        if col_a == col_b:  # same column: down bulges right, up bulges left
            side = 1 if by > ay else -1
            x1 = ax + side * self.half_width(a, ports[0])
            x2 = bx + side * self.half_width(b, ports[1])
            bulge = min(MAX_BULGE, 30 + 0.2 * abs(by - ay)) + nest
            pts = [(x1, y1), (x1 + side * bulge, y1), (x2 + side * bulge, y2), (x2, y2)]
            lx, ly = _bezier_at(pts, 0.5)
            return pts, (lx + side * 4, ly + 4), "start" if side > 0 else "end"
        side = 1 if col_b > col_a else -1  # forward: right side to left side; back: the reverse
        x1 = ax + side * self.half_width(a, ports[0])
        x2 = bx - side * self.half_width(b, ports[1])
        reach = max(40, abs(x2 - x1) / 2)
        pts = [(x1, y1), (x1 + side * reach, y1), (x2 - side * reach, y2), (x2, y2)]
        if abs(col_b - col_a) > 1 and self.blocked(pts, col_a, col_b):
            # over a column in the way, straight through its boxes: round below them all
            self.lanes += 1
            lane, turn = self.bottom + LANE_GAP * self.lanes, COL_GAP / 6
            pts = [(x1, y1), (x1 + side * turn, y1), (x1 + side * turn, lane),
                   (x1 + side * 2 * turn, lane),
                   (x1 + side * 2 * turn, lane), (x2 - side * 2 * turn, lane),
                   (x2 - side * 2 * turn, lane),
                   (x2 - side * turn, lane), (x2 - side * turn, y2), (x2, y2)]
        # the label at the tail, just above the line: arrows converging on one node (all the
        # idle waits of a host) would pile their labels up anywhere nearer the head
        return pts, (x1 + side * 10, y1 - 3), "start" if side > 0 else "end"


def _node_svg(n, cx, cy, in_knot):
    e = _html.escape
    classes = ["wf-node", "wf-process" if n.get("kind") == "process" else "wf-resource"]
    if n.get("target"):
        classes.append("wf-target")
    if in_knot:
        classes.append("wf-knot")
    name = label(n)
    if n.get("kind") == "process":
        sub = (f"on CPU {n['on_cpu_s']:.2f} s of {n['accounted_s']:.2f} s"
               if "on_cpu_s" in n and "accounted_s" in n else "")
        title = name + (f": {sub}" if sub else "") + ("; target" if n.get("target") else "")
        # a long kernel-thread name gives way, never the pid
        pid = f" ({n['pid']})"
        shown = _fit(n.get("comm") or "?", 22 - len(pid)) + pid
        outline = ('stroke="#111" stroke-width="3"' if n.get("target")
                   else 'stroke="#667" stroke-width="1.2"')
        shape = (f'<rect x="{cx - BOX_W / 2:.1f}" y="{cy - BOX_H / 2:.1f}" width="{BOX_W}" '
                 f'height="{BOX_H}" rx="8" fill="#eef2f8" {outline}/>')
        ring = (f'<rect class="wf-knot-ring" x="{cx - BOX_W / 2 - 5:.1f}" '
                f'y="{cy - BOX_H / 2 - 5:.1f}" width="{BOX_W + 10}" height="{BOX_H + 10}" '
                f'rx="11" fill="none" stroke="#d62728" stroke-width="3"/>')
        text = (f'<text x="{cx:.1f}" y="{cy - 3 if sub else cy + 4:.1f}" text-anchor="middle"'
                f' font-weight="{"bold" if n.get("target") else "normal"}">{e(shown)}</text>')
        if sub:
            text += (f'<text x="{cx:.1f}" y="{cy + 13:.1f}" text-anchor="middle" '
                     f'font-size="10" fill="#555">{e(sub)}</text>')
    else:
        title = f"{name} (resource)"
        shape = (f'<ellipse cx="{cx:.1f}" cy="{cy:.1f}" rx="{RESOURCE_RX}" ry="{BOX_H / 2}" '
                 f'fill="#fbf3dc" stroke="#b8963e" stroke-width="1.5"/>')
        ring = (f'<ellipse class="wf-knot-ring" cx="{cx:.1f}" cy="{cy:.1f}" '
                f'rx="{RESOURCE_RX + 6}" ry="{BOX_H / 2 + 6}" fill="none" stroke="#d62728" '
                f'stroke-width="3"/>')
        text = (f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" '
                f'font-style="italic">{e(_fit(name, 22))}</text>')
    return (f'<g class="{" ".join(classes)}" data-id="{e(n["id"])}"><title>{e(title)}</title>'
            f'{shape}{ring if in_knot else ""}{text}</g>')


def label_of(nodes, node_id):
    for n in nodes:
        if n["id"] == node_id:
            return label(n)
    return node_id


def _fit(text, chars):
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _ports(edges, place, centre):
    """{(edge index, 0 for its tail or 1 for its head): offset below the node's centre}: the
    arrows meeting one side of a node are spread along it in the order of their other ends,
    so that their heads do not land on one point."""
    sides = {}
    for n, x in enumerate(edges):
        a, b = x["from"], x["to"]
        if a == b:
            continue
        if place[a][0] == place[b][0]:
            side_a = side_b = 1 if centre[b][1] > centre[a][1] else -1
        else:
            side_a = 1 if place[b][0] > place[a][0] else -1
            side_b = -side_a
        sides.setdefault((a, side_a), []).append((centre[b][1], n, 0))
        sides.setdefault((b, side_b), []).append((centre[a][1], n, 1))
    ports = {}
    for members in sides.values():
        members.sort()
        span = min(BOX_H - 8, 13 * (len(members) - 1))  # 13: a label's height apart
        for j, (_, n, end) in enumerate(members):
            ports[(n, end)] = span * (j / (len(members) - 1) - 0.5) if len(members) > 1 else 0.0
    return ports


def _bezier_at(pts, t):
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = pts
    w = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3)
    return (w[0] * x0 + w[1] * x1 + w[2] * x2 + w[3] * x3,
            w[0] * y0 + w[1] * y1 + w[2] * y2 + w[3] * y3)


def _arrow(pts, stroke):
    """(path data, arrowhead polygon points) of cubic segments pts (3n + 1 points): the path
    stops at the head's base, so a thick stroke does not blunt the head's tip."""
    (x0, y0), (x2, y2), (x3, y3) = pts[-4], pts[-2], pts[-1]
    dx, dy = x3 - x2, y3 - y2
    if math.hypot(dx, dy) < 1e-6:
        dx, dy = x3 - x0, y3 - y0
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    head_len, head_half = 7 + 1.3 * stroke, 3.5 + 0.9 * stroke
    bx, by = x3 - ux * head_len, y3 - uy * head_len
    body = pts[:-1] + [(bx, by)]
    path = f"M{body[0][0]:.1f},{body[0][1]:.1f}" + "".join(
        " C" + " ".join(f"{x:.1f},{y:.1f}" for x, y in body[i:i + 3])
        for i in range(1, len(body), 3))
    head = (f"{x3:.1f},{y3:.1f} {bx - uy * head_half:.1f},{by + ux * head_half:.1f} "
            f"{bx + uy * head_half:.1f},{by - ux * head_half:.1f}")
    return path, head
