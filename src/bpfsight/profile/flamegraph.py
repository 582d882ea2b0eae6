"""Flame graphs from folded stacks: a self-contained interactive HTML page (inline CSS and JS,
no network: zoom by click, regex search with the matched share, hover with counts and %), a
static SVG, and the differential variant of both (colour = change between two profiles,
width = the second one, as Gregg's difffolded.pl + flamegraph.pl)."""
import html
import json
import zlib
from dataclasses import dataclass, field


@dataclass
class Node:
    name: str
    value: float = 0
    delta: float = 0          # differential graphs: value in "after" minus value in "before"
    children: dict = field(default_factory=dict)

    def child(self, name):
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = Node(name)
        return node

    def walk(self, depth=0):
        yield self, depth
        for c in self.children.values():
            yield from c.walk(depth + 1)

    def depth(self):
        return max(d for _, d in self.walk())


def build_tree(folded, before=None):
    """The frame tree of {root-first frames: value}; with `before`, each node also carries
    value(after) - value(before) in delta (stacks only in `before` have width 0)."""
    root = Node("all")
    for frames, value in folded.items():
        _add(root, frames, value, 1)
    for frames, value in (before or {}).items():
        _add(root, frames, value, -1)
    return root


def _add(root, frames, value, sign):
    nodes = [root]
    for f in frames:
        nodes.append(nodes[-1].child(f))
    for n in nodes:
        if sign > 0:
            n.value += value
            n.delta += value
        else:
            n.delta -= value


def _hash(name):
    return zlib.crc32(name.encode()) / 0xFFFFFFFF


def _python_frame(name):
    from ..pyframes import PYTHON_FRAME
    return PYTHON_FRAME.match(name)


def frame_color(name, delta=None, max_delta=1):
    """flamegraph.pl's "hot" palette, orange for annotated kernel frames, blue-green for
    Python frames; differential graphs are red where the frame grew and blue where it
    shrank."""
    if delta is not None:
        if not delta or not max_delta:
            return "rgb(250,250,250)"
        shade = int(210 - 210 * min(abs(delta) / max_delta, 1))
        return f"rgb(255,{shade},{shade})" if delta > 0 else f"rgb({shade},{shade},255)"
    if name in ("-", "--"):
        return "rgb(200,200,200)"
    v1, v2 = _hash(name), _hash(name[::-1])
    if name.endswith("_[k]"):
        return f"rgb({int(200 + 55 * v1)},{int(120 + 60 * v2)},40)"
    if _python_frame(name):
        return f"rgb({int(60 + 60 * v1)},{int(170 + 50 * v2)},{int(200 + 55 * v1)})"
    return f"rgb({int(205 + 50 * v1)},{int(230 * v2)},{int(55 * v1 * v2)})"


# --- HTML ---

def tree_json(root, names=None):
    """[name index, value, delta, [children]] with a shared names table: compact to embed."""
    names = {} if names is None else names
    idx = names.setdefault(root.name, len(names))
    kids = sorted(root.children.values(), key=lambda n: n.name)
    return [idx, root.value, root.delta, [tree_json(c, names) for c in kids]]


def render_html(root, title="Flame Graph", subtitle="", unit="samples", diff=False):
    names = {}
    tree = tree_json(root, names)
    data = {"tree": tree, "names": list(names), "unit": unit, "diff": diff,
            "maxDelta": max((abs(n.delta) for n, _ in root.walk() if n is not root),
                            default=0)}
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (_HTML.replace("@TITLE@", html.escape(title))
            .replace("@SUBTITLE@", html.escape(subtitle))
            .replace("@DATA@", payload)
            .replace("@SCRIPT@", _SCRIPT))


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
body{font:12px Verdana,Arial,sans-serif;margin:10px;background:#f8f8f8;color:#000}
h1{font-size:17px;text-align:center;margin:4px 0}
#sub{text-align:center;color:#555;margin-bottom:6px}
#controls{display:flex;gap:8px;align-items:center;margin:6px 0}
#controls input{flex:0 1 300px;font:12px monospace;padding:2px 4px}
#matched{margin-left:auto;color:#333}
#chart{position:relative;width:100%;background:linear-gradient(#eeeeee,#eeeeb0);overflow:hidden}
.frame{position:absolute;height:16px;line-height:16px;font:11px Verdana,Arial,sans-serif;
 white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding-left:2px;box-sizing:border-box;
 border-right:1px solid rgba(255,255,255,.7);border-bottom:1px solid rgba(255,255,255,.7);
 cursor:pointer;border-radius:1px}
.frame:hover{outline:1px solid #000;z-index:1}
.frame.dim{opacity:.55}
.frame.match{background:rgb(230,0,230)!important;color:#fff}
#details{font:12px monospace;min-height:16px;margin-top:4px;white-space:pre}
#tip{position:fixed;display:none;background:#ffffe0;border:1px solid #888;padding:3px 6px;
 pointer-events:none;font:12px monospace;white-space:pre;z-index:2}
</style></head>
<body>
<h1>@TITLE@</h1>
<div id="sub">@SUBTITLE@</div>
<div id="controls"><input id="search" type="search" placeholder="Search (regular expression)"
 aria-label="search"><button id="reset">Reset zoom</button><span id="matched"></span></div>
<div id="chart" role="img" aria-label="flame graph"></div>
<div id="details"></div>
<div id="tip"></div>
<script type="application/json" id="data">@DATA@</script>
<script>@SCRIPT@</script>
</body></html>
"""

# The page's logic: build nodes from the embedded tree, lay out the zoomed subtree (ancestors
# full width, dimmed), one absolutely positioned div per frame wider than MINPX. body's
# data-frames / data-matched attributes say what was drawn (tests read them back).
_SCRIPT = r"""
(function () {
"use strict";
var D = JSON.parse(document.getElementById("data").textContent);
var H = 17, MINPX = 0.5;
var chart = document.getElementById("chart"), tip = document.getElementById("tip");
var details = document.getElementById("details"), search = document.getElementById("search");
var maxDepth = 0;
function build(a, parent, depth) {
  var node = {name: D.names[a[0]], value: a[1], delta: a[2], parent: parent, depth: depth, kids: []};
  if (depth > maxDepth) maxDepth = depth;
  for (var i = 0; i < a[3].length; i++) node.kids.push(build(a[3][i], node, depth + 1));
  return node;
}
var root = build(D.tree, null, 0), zoomed = root, re = null;
function hash(s) {
  var h = 0xFFFFFFFF;
  for (var i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    for (var k = 0; k < 8; k++) h = (h >>> 1) ^ (0xEDB88320 & -(h & 1));
  }
  return ((h ^ 0xFFFFFFFF) >>> 0) / 0xFFFFFFFF;
}
function color(n) {
  if (D.diff) {
    if (!n.delta || !D.maxDelta) return "rgb(250,250,250)";
    var s = Math.round(210 - 210 * Math.min(Math.abs(n.delta) / D.maxDelta, 1));
    return n.delta > 0 ? "rgb(255," + s + "," + s + ")" : "rgb(" + s + "," + s + ",255)";
  }
  if (n.name === "-" || n.name === "--") return "rgb(200,200,200)";
  var v1 = hash(n.name), v2 = hash(n.name.split("").reverse().join(""));
  if (/_\[k\]$/.test(n.name))
    return "rgb(" + Math.floor(200 + 55 * v1) + "," + Math.floor(120 + 60 * v2) + ",40)";
  if (/^\S+ \(.+:(\d+|\?)\)$/.test(n.name))
    return "rgb(" + Math.floor(60 + 60 * v1) + "," + Math.floor(170 + 50 * v2) + "," +
           Math.floor(200 + 55 * v1) + ")";
  return "rgb(" + Math.floor(205 + 50 * v1) + "," + Math.floor(230 * v2) + "," +
         Math.floor(55 * v1 * v2) + ")";
}
function pct(v, of) { return of ? (100 * v / of).toFixed(2) + "%" : "0%"; }
function fmt(v) { return (Math.round(v * 100) / 100).toLocaleString("en-US"); }
function describe(n) {
  var s = n.name + "\n" + fmt(n.value) + " " + D.unit + " (" + pct(n.value, root.value) + " of all";
  if (zoomed !== root) s += ", " + pct(n.value, zoomed.value) + " of zoomed";
  s += ")";
  if (D.diff) s += "\nchange: " + (n.delta > 0 ? "+" : "") + fmt(n.delta) + " " + D.unit +
                   " (" + (n.delta > 0 ? "+" : "") + pct(n.delta, root.value) + ")";
  return s;
}
function addFrame(frag, n, x, w, dim) {
  var e = document.createElement("div");
  e.className = "frame" + (dim ? " dim" : "");
  e.style.left = x + "px"; e.style.width = w + "px"; e.style.bottom = (n.depth * H) + "px";
  e.style.background = color(n);
  e.textContent = w > 20 ? n.name : "";
  e.node = n;
  frag.appendChild(e);
}
function render() {
  var W = chart.clientWidth || 1200, frag = document.createDocumentFragment(), count = 0;
  chart.textContent = "";
  chart.style.height = ((maxDepth + 1) * H) + "px";
  for (var a = zoomed.parent; a; a = a.parent) { addFrame(frag, a, 0, W, true); count++; }
  (function lay(n, x, w) {
    addFrame(frag, n, x, w, false); count++;
    var cx = x;
    for (var i = 0; i < n.kids.length; i++) {
      var k = n.kids[i], cw = n.value ? w * k.value / n.value : 0;
      if (cw >= MINPX) lay(k, cx, cw);
      cx += cw;
    }
  })(zoomed, 0, W);
  chart.appendChild(frag);
  document.body.setAttribute("data-frames", count);
  mark();
}
function mark() {
  var frames = chart.children, shown = 0, total = 0;
  for (var i = 0; i < frames.length; i++) {
    var hit = !!(re && re.test(frames[i].node.name));
    frames[i].classList.toggle("match", hit);
    if (hit) shown++;
  }
  (function sum(n) {  // a match inside a match is already counted
    if (re && re.test(n.name)) { total += n.value; return; }
    for (var i = 0; i < n.kids.length; i++) sum(n.kids[i]);
  })(zoomed);
  document.body.setAttribute("data-matched", shown);
  document.getElementById("matched").textContent =
      re ? "Matched: " + pct(total, zoomed.value) : "";
}
function setSearch(text) {
  try { re = text ? new RegExp(text) : null; search.style.color = ""; }
  catch (err) { re = null; search.style.color = "red"; }
  mark();
}
function zoom(n) {
  zoomed = n;
  render();
  details.textContent = n === root ? "" : "zoomed: " + describe(n);
}
chart.addEventListener("click", function (ev) { if (ev.target.node) zoom(ev.target.node); });
chart.addEventListener("mousemove", function (ev) {
  var n = ev.target.node;
  if (!n) { tip.style.display = "none"; return; }
  tip.textContent = describe(n);
  tip.style.display = "block";
  tip.style.left = Math.min(ev.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
  tip.style.top = (ev.clientY + 14) + "px";
});
chart.addEventListener("mouseleave", function () { tip.style.display = "none"; });
document.getElementById("reset").addEventListener("click", function () { zoom(root); });
search.addEventListener("input", function () { setSearch(search.value); });
window.addEventListener("resize", render);
document.addEventListener("keydown", function (ev) {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "f") { ev.preventDefault(); search.focus(); }
  if (ev.key === "Escape") zoom(root);
});
// #search=REGEX&zoom=FRAME: links (and tests) can open the graph searched or zoomed
var params = {};
location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
  var i = kv.indexOf("=");
  if (i > 0) params[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1));
});
if (params.zoom) {
  var queue = [root];
  while (queue.length) {
    var n = queue.shift();
    if (n.name === params.zoom) { zoomed = n; break; }
    queue.push.apply(queue, n.kids);
  }
}
render();
if (params.search) { search.value = params.search; setSearch(params.search); }
})();
"""


# --- SVG ---

def render_svg(root, title="Flame Graph", subtitle="", unit="samples", diff=False,
               width=1200, frame_h=16, min_px=0.1):
    """A static flame graph (hover shows each frame's <title>), root at the bottom."""
    depth = root.depth()
    top = 50
    height = top + (depth + 1) * frame_h + 20
    xpad = 10
    usable = width - 2 * xpad
    max_delta = max((abs(n.delta) for n, _ in root.walk() if n is not root), default=0)
    out = [f'<?xml version="1.0" standalone="no"?>\n'
           f'<svg version="1.1" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           '<style>text{font-family:Verdana,sans-serif;font-size:11px}'
           '.t{font-size:17px}.s{fill:#555}</style>',
           '<rect width="100%" height="100%" fill="#f8f8f8"/>',
           f'<text class="t" x="{width / 2}" y="22" text-anchor="middle">'
           f'{html.escape(title)}</text>',
           f'<text class="s" x="{width / 2}" y="40" text-anchor="middle">'
           f'{html.escape(subtitle)}</text>']

    def frame(n, x, w, d):
        y = height - 20 - (d + 1) * frame_h
        share = 100 * n.value / root.value if root.value else 0
        info = f"{n.name} ({n.value:g} {unit}, {share:.2f}%"
        if diff:
            info += f", change {n.delta:+g}"
        info += ")"
        fill = frame_color(n.name, n.delta if diff else None, max_delta)
        label = ""
        chars = int((w - 4) / 7)
        if chars >= 3:
            label = n.name if len(n.name) <= chars else n.name[:chars - 2] + ".."
        out.append(f'<g class="frame"><title>{html.escape(info)}</title>'
                   f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{frame_h - 1}" '
                   f'fill="{fill}" rx="2"/>'
                   + (f'<text x="{x + 3:.2f}" y="{y + frame_h - 4}">{html.escape(label)}</text>'
                      if label else "") + "</g>")
        cx = x
        for c in sorted(n.children.values(), key=lambda c: c.name):
            cw = w * c.value / n.value if n.value else 0
            if cw >= min_px:
                frame(c, cx, cw, d + 1)
            cx += cw

    frame(root, xpad, usable, 0)
    out.append("</svg>\n")
    return "\n".join(out)
