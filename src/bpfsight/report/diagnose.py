"""Render a diagnose report (the plain dict of diagnose.command) for a terminal (fits 100
columns, top-down: verdict, time breakdown, findings with evidence) or as one self-contained
HTML page."""
import html as _html
import textwrap

from . import waitgraph
from .histogram import Log2Histogram, format_log2

MARK = {"bottleneck": "❌ BOTTLENECK", "warning": "⚠  WARNING", "ok": "✓  ok"}
COLOUR = {"on_cpu": "#4e79a7", "runqueue": "#e15759", "disk": "#f28e2b", "network": "#76b7b2",
          "lock": "#b07aa1", "ipc": "#ff9da7", "memory": "#edc948", "sleep": "#bab0ac", "other": "#9c755f"}


def _target(report):
    t = report["target"]
    if report.get("command"):
        c = report["command"]
        return f"`{' '.join(c['argv'])}` (pid {c['pid']} and its children)"
    if t["pids"]:
        names = ", ".join(f"{p} ({t['comms'].get(str(p)) or '?'})" for p in t["pids"])
        return f"pid {names}"
    return f"cgroup {t['cgroup']}" if t["cgroup"] else "the whole host"


def terminal(report, width=100):
    lines = [f"bpfsight diagnose: {_target(report)}, {report['duration_s']:.1f} s", ""]
    lines += textwrap.wrap(f"VERDICT: {report['verdict']['summary']}", width,
                           subsequent_indent="         ") + [""]
    bd = report["time_breakdown"]
    total = sum(bd.values()) or 1.0
    lines.append(f"Where the time went ({total:.1f} thread-seconds):")
    for cause, secs in sorted(bd.items(), key=lambda kv: -kv[1]):
        bar = "█" * int(round(50 * secs / total))
        lines.append(f"  {cause:<9} {secs:8.2f} s {100 * secs / total:5.1f}%  {bar}")
    lines += ["", "Findings:"]
    for f in report["findings"]:
        lines += textwrap.wrap(f"  {MARK[f['severity']]:<13} {f['resource']:<8} {f['summary']}",
                               width, subsequent_indent=" " * 25)
    chains = report.get("wait_for", {}).get("chains") or []
    for ch in chains[:3]:
        if ch["steps"]:
            lines += ["", "Wait-for chain (each step: the heaviest non-idle use of its time):"]
            lines += [f"  {_chain_step(s)}" for s in ch["steps"]]
            if ch["knot"]:
                lines.append(f"  knot: {', '.join(ch['knot']['nodes'])} ({ch['knot']['what']})")
    if _python_lines(report):
        lines += ["", _python_title(report) + ":"] + _python_lines(report)
    if report.get("processes"):
        lines += ["", "Processes that waited most (not idle, not on CPU):",
                  f"  {'PID':>7} {'COMM':<16} {'WAITING':>9} {'ON CPU':>8}  DOMINANT WAIT"]
        for r in report["processes"][:10]:
            lines.append(f"  {r['pid']:>7} {r['comm'][:16]:<16} {r['waiting_s']:>8.2f}s "
                         f"{r['on_cpu_s']:>7.2f}s  {r['dominant_wait']} {r['dominant_s']:.2f} s")
    for f in report["findings"]:
        if f["severity"] == "ok":
            continue
        lines += ["", f"Evidence for {f['resource']}:"]
        lines += _evidence_lines(f["evidence"], width)
    failed = [c for c in report.get("checks", []) if not c["ok"]]
    if failed:
        lines += ["", "Accounting checks that failed (the verdict is less certain):"]
        for c in failed:
            lines += textwrap.wrap(f"  ✗ {c['name']}: measured {c['measured']}, expected "
                                   f"{c['expected']} ± {c['tolerance']} ({c['detail']})", width,
                                   subsequent_indent="    ")
    if report.get("lost_intervals"):
        lines.append(f"\n{report['lost_intervals']} intervals lost (accounting map full)")
    if report.get("command"):
        c = report["command"]
        how = (f"was killed by signal {-c['exit_status']}" if c["exit_status"] < 0 else
               f"exited with status {c['exit_status']}")
        lines.append(f"\ncommand {how} after {c['wall_s']:.2f} s")
    return "\n".join(lines)


def _chain_step(step):
    what = {"on_cpu": "working on CPU", "runqueue": "waiting for a CPU"}.get(
        step["cause"], f"{step['cause']} wait for {step['for']}")
    quota = f", {step['throttled']['words']}" if step.get("throttled") else ""
    return (f"pid {step['pid']} ({step['comm']}): {what}, {step['seconds']:.2f} s "
            f"({100 * step['share']:.0f}% of its time){quota}")


def _evidence_lines(ev, width):
    lines = []
    for key in ("runqueue_latency",):
        if key in ev and ev[key]["count"]:
            lines.append("  run-queue latency:")
            lines += ["    " + ln for ln in format_log2(_hist(ev[key])).splitlines()]
    for name, d in ev.get("disks", {}).items():
        lines.append(f"  {name}: {d['iops']:.0f} IOPS, read {d['read_kbps']:.0f} KB/s, write "
                     f"{d['write_kbps']:.0f} KB/s, {d['util']:.0f}% busy, queue {d['queue_depth']:.2f}")
        if d["latency"]["count"]:
            lines += ["    " + ln for ln in format_log2(_hist(d["latency"])).splitlines()]
    for p in ev.get("top_processes", [])[:3]:
        lines.append(f"  process {p['pid']} ({p['comm']}): {p['seconds']:.2f} s")
    for p in ev.get("peers", [])[:3]:
        if "peer" in p:  # a TCP peer
            owner = f" = pid {p['owner']['pid']} ({p['owner']['comm']})" if p["owner"] else ""
            conns = f" over {p['connections']} connections" if p.get("connections", 1) > 1 else ""
            lines.append(f"  waiting for {p['peer']}{owner}: {p['seconds']:.2f} s, {p['count']} waits"
                         f"{conns}")
        else:  # a local process
            m = p["meanwhile"]
            lines.append(f"  waiting on pid {p['pid']} ({p['comm']}): {p['seconds']:.2f} s"
                         + (f"; it was {m.get('doing') or m['cause']}" if m else ""))
    for lk in ev.get("locks", [])[:3]:
        lines.append(f"  lock {lk['address']} in pid {lk['pid']} ({lk['kind']}): {lk['seconds']:.2f} s, "
                     f"{lk['waits']} waits")
    for w in ev.get("top_wakers", [])[:3]:
        lines.append(f"  woken by {w['waker']}: {w['seconds']:.2f} s")
    for s in ev.get("top_syscalls", [])[:3]:
        lines.append(f"  in {s['syscall']}(): {s['seconds']:.2f} s")
    for s in ev.get("top_by_count", [])[:3]:
        lines.append(f"  {s['syscall']}: {s['count']} calls, {s['total_ms']:.1f} ms")
    for st in ev.get("top_stacks", [])[:3]:
        lines.append(f"  {st['seconds']:.2f} s in: " + " <- ".join(st["frames"][:6])[:width - 20])
    return lines


def _hist(d):
    slots = [0] * 32
    for i, b in enumerate(d["buckets"]):
        slots[i] = b["count"]
    return Log2Histogram(slots, d["total"], d["unit"])


def time_flamegraph(report):
    """An inline SVG flame graph of the threads' time: a tower per cause, blocked time split
    by the kernel stack it waited in (innermost frame on top)."""
    from ..profile.flamegraph import build_tree, render_svg
    folded = {}
    stacked = {}
    for st in report.get("blocked_stacks", []):
        key = (st["cause"],) + tuple(reversed(st["frames"]))
        folded[key] = folded.get(key, 0) + st["seconds"]
        stacked[st["cause"]] = stacked.get(st["cause"], 0) + st["seconds"]
    for cause, secs in report["time_breakdown"].items():
        rest = secs - stacked.get(cause, 0)  # time with no stack (on CPU, run queue, idle syscalls)
        if rest > 0.0005:
            folded[(cause,)] = folded.get((cause,), 0) + rest
    if not folded:
        return ""
    svg = render_svg(build_tree(folded), title="Where the threads' time went",
                     subtitle="width = thread-seconds; blocked time by kernel stack", unit="s")
    return svg.split("?>", 1)[-1]


def wait_for_section(report):
    """The "Wait-for graph" part of the page: the graph as inline SVG, the knot, what was left
    out, and the chain as text. Empty for a report from before the graph existed."""
    wait_for = report.get("wait_for")
    if wait_for is None:
        return ""
    e = _html.escape
    chains = wait_for.get("chains") or []
    all_nodes, all_edges = wait_for.get("nodes", []), wait_for.get("edges", [])
    nodes, edges = waitgraph.select(wait_for, chains)
    knots = [k for k in [report["verdict"].get("knot")] + [ch.get("knot") for ch in chains] if k]
    knots = list({(tuple(k["nodes"]), k["what"]): k for k in knots}.values())  # each once
    parts = ['<h2>Wait-for graph</h2><div id="waitfor">']
    if not all_nodes:
        parts.append("<p>No wait was heavy enough to draw.</p></div>")
        return "".join(parts)
    parts.append('<p class="note">An arrow A → B: A waited that long for B (a process, the CPUs, '
                 'a disk, the network, idle time); thickness grows with the square root of the '
                 'time. Boxes are processes (thick outline: the target), ellipses resources; '
                 'dashed grey arrows are idle time; a red ring marks the knot, where the chain '
                 'of waits from the target ends.</p>')
    parts.append(waitgraph.svg(nodes, edges, {i for k in knots for i in k["nodes"]}, COLOUR))
    for k in knots:
        names = ", ".join(waitgraph.label_of(all_nodes, i) for i in k["nodes"])
        parts.append(f'<p class="knot">knot: {e(names)} ({e(k["what"])})</p>')
    left_nodes, left_edges = len(all_nodes) - len(nodes), len(all_edges) - len(edges)
    if left_nodes or left_edges:
        parts.append(f'<p class="left-out">Not drawn: {left_nodes} of {len(all_nodes)} nodes and '
                     f'{left_edges} of {len(all_edges)} edges (the lightest waits, idle ones '
                     f'first).</p>')
    for ch in chains:
        if ch["steps"]:
            parts.append("<h3>Wait-for chain</h3><ol class=\"chain\">"
                         + "".join(f"<li>{e(_chain_step(s))}</li>" for s in ch["steps"]) + "</ol>")
    parts.append("</div>")
    return "".join(parts)


def _python_title(report):
    return f"Where its Python code blocked ({report['python']['interpreter']})"


def _python_lines(report):
    """A CPython target's heaviest blocked lines (diagnose/python.py), one per line."""
    python = report.get("python")
    lines = []
    for b in python["blocked_at"] if python else ():
        via = f"  ← {' ← '.join(b['callers'])}" if b["callers"] else ""
        lines.append(f"  {b['seconds']:8.2f} s {b['state']}  {b['frame']}{via}")
    return lines


def html(report):
    e = _html.escape
    bd = report["time_breakdown"]
    total = sum(bd.values()) or 1.0
    bar = "".join(
        f'<div class="seg" style="width:{100 * v / total:.2f}%;background:{COLOUR[k]}" '
        f'title="{k}: {v:.2f} s ({100 * v / total:.1f}%)"></div>' for k, v in bd.items() if v > 0)
    legend = "".join(f'<span><i style="background:{COLOUR[k]}"></i>{k} {100 * v / total:.1f}%'
                     f' ({v:.2f} s)</span>' for k, v in bd.items())
    python = (f"<h2>{e(_python_title(report))}</h2><pre>{e(chr(10).join(_python_lines(report)))}"
              "</pre>" if _python_lines(report) else "")
    panels = []
    for f in report["findings"]:
        body = "\n".join(_evidence_lines(f["evidence"], 160))
        panels.append(f'<section class="{f["severity"]}"><h3>{e(f["severity"].upper())} — '
                      f'{e(f["resource"])}</h3><p>{e(f["summary"])}</p>'
                      + (f"<pre>{e(body)}</pre>" if body else "") + "</section>")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>bpfsight diagnose: {e(_target(report))}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}}
.verdict{{font-size:1.3em;padding:.8em;border-radius:6px;background:#fdecea}}
.verdict.none{{background:#eaf7ea}}
.bar{{display:flex;height:28px;border-radius:4px;overflow:hidden;margin:.5em 0}}
.legend span{{margin-right:1.2em;font-size:.9em}}
.legend i{{display:inline-block;width:10px;height:10px;margin-right:4px}}
section{{border-left:5px solid #bbb;padding:.2em 1em;margin:1em 0}}
section.bottleneck{{border-color:#d62728}} section.warning{{border-color:#ff9f1c}}
section.ok{{border-color:#2ca02c}} pre{{font-size:.8em;overflow-x:auto}}
.note{{font-size:.9em;color:#555}} .knot{{color:#d62728;font-weight:bold}}
</style></head><body>
<h1>bpfsight diagnose</h1><p>{e(_target(report))}, {report['duration_s']:.1f} s</p>
<div class="verdict {e(report['verdict']['bottleneck'])}">{e(report['verdict']['summary'])}</div>
<h2>Where the time went ({total:.1f} thread-seconds)</h2>
<div class="bar" id="breakdown">{bar}</div><div class="legend">{legend}</div>
<h2>Findings</h2>{''.join(panels)}
{python}{wait_for_section(report)}
<h2>Stacks</h2><div id="flamegraph">{time_flamegraph(report)}</div>
</body></html>
"""
