"""servicemap's reports: the terminal table of the heaviest edges, the nodes list of --json,
Graphviz (--dot) and one self-contained HTML page (--html) with the graph drawn as inline SVG:
clients on the left, the services they reach to the right (a local server that is itself a
client of another service one column further). Plain data in, a string out."""
import html as _html
import math
import os

DASHED = ' stroke-dasharray="5 4"'  # an edge whose connects all failed
MAX_DRAWN = 60  # edges on the page; the table under the graph lists them all
BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN = 210, 40, 200, 22, 20
TOP = 70  # room above the first row for a process's edge to itself (client and server)


def endpoint(addr, port):
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def kb(n):
    return f"{n / 1024:.1f}"


def name_nodes(smap):
    """Resolve the edges' cgroup ids to paths (one walk of the cgroup v2 tree, only when some
    are named) for the nodes' cgroup and container."""
    wanted = {c for e in smap.edges.values() for c in (e.client_cgid, e.server_cgid) if c}
    if not wanted:
        return
    from ..target import cgroup2_root
    try:
        root = cgroup2_root()
    except Exception:
        return
    for path, _, _ in os.walk(root):
        try:
            ino = os.stat(path).st_ino
        except OSError:
            continue
        if ino in wanted:
            rel = os.path.relpath(path, root)
            smap.cgroups[ino] = "/" if rel == "." else "/" + rel
            wanted.discard(ino)
            if not wanted:
                break


def _process(pid, comm, cgid, cgroups):
    from ..exporter.labels import cgroup_labels
    path = cgroups.get(cgid, "")
    _, container, pod = cgroup_labels(path)
    node = {"id": f"pid:{pid}", "kind": "process", "pid": pid, "comm": comm, "cgroup": path}
    if container:
        node["container"] = container
    if pod:
        node["pod"] = pod
    return node


def nodes(edges, cgroups=None):
    """The nodes the edges name: processes (pid, comm, cgroup), services (address:port with
    no local process seen serving it) and clients known only by their address."""
    cgroups = cgroups or {}
    found = {}
    for e in edges:
        if e.client_pid:
            found.setdefault(e.client, _process(e.client_pid, e.client_comm, e.client_cgid,
                                                cgroups))
        else:
            found.setdefault(e.client, {"id": e.client, "kind": "client", "addr": e.client_addr})
        if e.server_pid:
            node = found.setdefault(e.server, _process(e.server_pid, e.server_comm,
                                                       e.server_cgid, cgroups))
            serves = node.setdefault("serves", [])
            if endpoint(e.server_addr, e.server_port) not in serves:
                serves.append(endpoint(e.server_addr, e.server_port))
        else:
            found.setdefault(e.server, {"id": e.server, "kind": "service",
                                        "addr": e.server_addr, "port": e.server_port})
    return list(found.values())


def label(node):
    if node["kind"] == "process":
        return f"{node['comm'] or '?'} ({node['pid']})"
    return node["id"]


def client_text(e):
    return f"{e.client_comm or '?'} ({e.client_pid})" if e.client_pid else e.client_addr


def server_text(e):
    text = endpoint(e.server_addr, e.server_port)
    return text + (f" {e.server_comm or '?'} ({e.server_pid})" if e.server_pid else "")


def latency_text(e):
    n = e.latency.count
    return f"{e.lat_sum_ns / n / 1e3:.1f}/{e.lat_max_ns / 1e3:.1f}" if n else "-"


HEAD = "%-24s %-40s %6s %5s %6s %9s %9s %15s %7s %6s"


def table(smap, top, by):
    edges = smap.ranked(by)
    head = (f"{len(edges)} edges between {len(smap.nodes())} nodes in {smap.seconds:.1f} s"
            + (f"; {smap.lost} connections not recorded (map full)" if smap.lost else ""))
    lines = ["", head, HEAD % ("CLIENT", "SERVER", "CONNS", "EXIST", "FAILED", "TX_KB", "RX_KB",
                               "CONNECT_US", "RETRANS", "RESETS")]
    for e in edges[:top]:
        c = e.counts
        failed = str(c["failed"]) + (f"({c['refused']}r)" if c["refused"] else "")
        lines.append(HEAD % (client_text(e)[:24], server_text(e)[:40], c["opened"],
                             c["existing"], failed, kb(c["tx_bytes"]), kb(c["rx_bytes"]),
                             latency_text(e), c["retransmits"], c["resets"]))
    if len(edges) > top:
        lines.append(f"... {len(edges) - top} lighter edges not shown (-n)")
    return lines


def edge_text(e):
    c = e.counts
    parts = [endpoint(e.server_addr, e.server_port), f"{c['opened']} conns"]
    if c["existing"]:
        parts.append(f"{c['existing']} existing")
    if c["failed"]:
        parts.append(f"{c['failed']} failed ({c['refused']} refused, "
                     f"{c['timed_out']} timed out)")
    parts.append(f"{kb(c['tx_bytes'])} KB / {kb(c['rx_bytes'])} KB")
    if e.latency.count:
        parts.append(f"connect {latency_text(e)} us")
    if c["retransmits"] or c["resets"]:
        parts.append(f"{c['retransmits']} retrans, {c['resets']} resets")
    return parts


def _volume(e):
    return e.counts["tx_bytes"] + e.counts["rx_bytes"]


def _width(e, heaviest):
    return 1.2 + 5.8 * math.sqrt(_volume(e) / heaviest) if heaviest else 1.2


# --- Graphviz ---

def _q(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(smap):
    edges = smap.ranked()
    heaviest = max(map(_volume, edges), default=0)
    lines = ["digraph servicemap {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef2f8", '
             'fontname="sans-serif"];', '  edge [fontname="sans-serif", fontsize=10];']
    for n in nodes(edges, smap.cgroups):
        extra = "\n" + ", ".join(n.get("serves", [])) if n.get("serves") else ""
        shape = "" if n["kind"] == "process" else ', shape=ellipse, fillcolor="#fbf3dc"'
        lines.append(f"  {_q(n['id'])} [label={_q(label(n) + extra)}{shape}];")
    for e in edges:
        colour = ', color="#d62728"' if e.counts["failed"] and not e.counts["opened"] else ""
        lines.append(f"  {_q(e.client)} -> {_q(e.server)} [label={_q(chr(10).join(edge_text(e)))}"
                     f", penwidth={_width(e, heaviest):.1f}{colour}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- HTML ---

def layout(node_ids, edges):
    """{id: (column, row)}: nodes nothing connects to in column 0, every other one column past
    the furthest of its clients (bounded, so a cycle ends)."""
    column = dict.fromkeys(node_ids, 0)
    for _ in range(len(node_ids)):
        moved = False
        for e in edges:
            if e.client != e.server and column[e.server] < column[e.client] + 1 <= len(node_ids):
                column[e.server] = column[e.client] + 1
                moved = True
        if not moved:
            break
    rows, place = {}, {}
    for i in node_ids:
        place[i] = (column[i], rows.get(column[i], 0))
        rows[column[i]] = rows.get(column[i], 0) + 1
    return place, max(rows.values(), default=1)


def svg(smap):
    esc = _html.escape
    edges = smap.ranked()[:MAX_DRAWN]
    drawn = nodes(edges, smap.cgroups)
    place, tallest = layout([n["id"] for n in drawn], edges)
    columns = max((c for c, _ in place.values()), default=0) + 1
    width = 2 * MARGIN + columns * BOX_W + (columns - 1) * COL_GAP
    height = TOP + MARGIN + tallest * (BOX_H + ROW_GAP)
    per_col = {}
    for c, _ in place.values():
        per_col[c] = per_col.get(c, 0) + 1
    centre = {}
    for i, (c, r) in place.items():
        shift = (tallest - per_col[c]) * (BOX_H + ROW_GAP) / 2
        centre[i] = (MARGIN + c * (BOX_W + COL_GAP) + BOX_W / 2,
                     TOP + shift + r * (BOX_H + ROW_GAP) + BOX_H / 2)
    heaviest = max(map(_volume, edges), default=0)
    parts = []
    for e in edges:
        (x1, y1), (x2, y2) = centre[e.client], centre[e.server]
        if e.client == e.server:
            d = (f"M{x1 - 20:.0f},{y1 - BOX_H / 2:.0f} C{x1 - 50:.0f},{y1 - 60:.0f} "
                 f"{x1 + 50:.0f},{y1 - 60:.0f} {x1 + 20:.0f},{y1 - BOX_H / 2:.0f}")
        else:
            side = 1 if x2 >= x1 else -1
            x1, x2 = x1 + side * BOX_W / 2, x2 - side * (BOX_W / 2 + 4)
            reach = max(40, abs(x2 - x1) / 2)
            d = (f"M{x1:.0f},{y1:.0f} C{x1 + side * reach:.0f},{y1:.0f} "
                 f"{x2 - side * reach:.0f},{y2:.0f} {x2:.0f},{y2:.0f}")
        failed = e.counts["failed"] and not e.counts["opened"] and not e.counts["existing"]
        colour = "#d62728" if failed else "#4a6fa5"
        c = e.counts
        parts.append(
            f'<g class="sm-edge" data-from="{esc(e.client)}" data-to="{esc(e.server)}" '
            f'data-opened="{c["opened"]}" data-failed="{c["failed"]}" '
            f'data-tx="{c["tx_bytes"]}" data-rx="{c["rx_bytes"]}">'
            f'<title>{esc(label_of(drawn, e.client))} -> {esc(label_of(drawn, e.server))}: '
            f'{esc(", ".join(edge_text(e)))}</title>'
            f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{_width(e, heaviest):.1f}"'
            f' marker-end="url(#arrow)"{DASHED if failed else ""}/></g>')
    for n in drawn:
        cx, cy = centre[n["id"]]
        process = n["kind"] == "process"
        sub = ", ".join(n.get("serves", [])) or n.get("container", "")[:12] or (
            n.get("cgroup", "").rsplit("/", 1)[-1] if process else n["kind"])
        shape = (f'<rect x="{cx - BOX_W / 2:.0f}" y="{cy - BOX_H / 2:.0f}" width="{BOX_W}" '
                 f'height="{BOX_H}" rx="8" fill="#eef2f8" stroke="#667"/>' if process else
                 f'<ellipse cx="{cx:.0f}" cy="{cy:.0f}" rx="{BOX_W / 2}" ry="{BOX_H / 2}" '
                 f'fill="#fbf3dc" stroke="#b8963e"/>')
        parts.append(
            f'<g class="sm-node sm-{n["kind"]}" data-id="{esc(n["id"])}"><title>'
            f'{esc(label(n))} {esc(n.get("cgroup", ""))}</title>{shape}'
            f'<text x="{cx:.0f}" y="{cy - 3:.0f}" text-anchor="middle">{esc(label(n)[:30])}</text>'
            f'<text x="{cx:.0f}" y="{cy + 12:.0f}" text-anchor="middle" font-size="10" '
            f'fill="#555">{esc(sub[:34])}</text></g>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="sm-graph" width="{width}" '
            f'height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" font-size="12" '
            f'font-family="system-ui,sans-serif" style="max-width:100%;height:auto" '
            f'data-nodes="{len(drawn)}" data-edges="{len(edges)}"><defs><marker id="arrow" '
            f'viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" markerHeight="11" '
            f'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
            f'</defs>{"".join(parts)}</svg>')


def label_of(drawn, node_id):
    return next((label(n) for n in drawn if n["id"] == node_id), node_id)


# clicking a node keeps its edges and fades the rest; the body carries what was drawn
SCRIPT = """
var g = document.querySelector('svg.sm-graph');
document.body.setAttribute('data-drawn-edges', g.querySelectorAll('.sm-edge').length);
document.body.setAttribute('data-drawn-nodes', g.querySelectorAll('.sm-node').length);
g.querySelectorAll('.sm-node').forEach(function (n) {
  n.addEventListener('click', function () {
    var id = n.getAttribute('data-id');
    g.querySelectorAll('.sm-edge').forEach(function (e) {
      var on = e.getAttribute('data-from') === id || e.getAttribute('data-to') === id;
      e.style.opacity = on ? 1 : 0.15;
    });
  });
});
"""


def html(smap):
    esc = _html.escape
    edges = smap.ranked()
    rows = "".join(
        f"<tr><td>{esc(client_text(e))}</td><td>{esc(server_text(e))}</td>"
        + "".join(f"<td>{v}</td>" for v in (
            e.counts["opened"], e.counts["existing"], e.counts["failed"], e.counts["refused"],
            e.counts["timed_out"], kb(e.counts["tx_bytes"]), kb(e.counts["rx_bytes"]),
            latency_text(e), e.counts["retransmits"], e.counts["resets"])) + "</tr>"
        for e in edges)
    heads = "".join(f"<th>{h}</th>" for h in (
        "client", "server", "opened", "existing", "failed", "refused", "timed out", "tx KB",
        "rx KB", "connect avg/max us", "retrans", "resets"))
    lost = f"; {smap.lost} connections not recorded (map full)" if smap.lost else ""
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>bpfsight servicemap</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:20px}table{border-collapse:"
        "collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "td:first-child,td:nth-child(2){text-align:left}.sm-node{cursor:pointer}</style></head>"
        f"<body data-edges=\"{len(edges)}\"><h1>TCP service map</h1>"
        f"<p>{len(edges)} edges between {len(smap.nodes())} nodes in {smap.seconds:.1f} s{lost}"
        f"{f' (the {MAX_DRAWN} heaviest drawn)' if len(edges) > MAX_DRAWN else ''}. "
        "Click a node to show its edges.</p>"
        f"{svg(smap)}<table><tr>{heads}</tr>{rows}</table><script>{SCRIPT}</script>"
        "</body></html>\n")
