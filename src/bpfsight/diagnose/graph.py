"""The wait-for graph: processes and resources are nodes; "A waited T seconds for B" are edges
(B a process, the CPUs, a disk, the network, idle time). From the target, the chain follows
each process's heaviest non-idle wait (or its own work on CPU) until it ends in a resource, in
the process's own work, or in a cycle: that end is the knot (wPerf's term: nodes that wait only
on each other), and it holds the bottleneck — the thing whose relief would speed the target up.
Plain data in, plain data out."""

IDLE_CAUSES = ("sleep",)
# edges lighter than this share of the graph's non-idle time are left out of the report
MIN_EDGE_SHARE = 0.005
MAX_CHAIN = 8


def build(acc, targets):
    """{'nodes': [...], 'edges': [...]} from the accounting's edges; targets: the target's
    tgids (None: the whole host)."""
    edges = [(t, node, cause, s) for (t, node, cause), s in acc.edges.items()
             if s > 0 and cause != "on_cpu" and t in acc.by_tgid]
    busy = sum(s for _, _, c, s in edges if c not in IDLE_CAUSES) or 1.0
    edges = [e for e in edges if e[3] >= MIN_EDGE_SHARE * busy]
    nodes = {}
    for t, node, _, _ in edges:
        for n in (f"pid:{t}", node):
            if n not in nodes:
                nodes[n] = _node(acc, n, targets)
    edges.sort(key=lambda e: -e[3])
    return {"nodes": list(nodes.values()),
            "edges": [{"from": f"pid:{t}", "to": node, "cause": cause, "seconds": round(s, 4)}
                      for t, node, cause, s in edges]}


def _node(acc, node, targets):
    if node.startswith("pid:"):
        pid = int(node[4:])
        by = acc.by_tgid.get(pid, {})
        return {"id": node, "kind": "process", "pid": pid, "comm": acc.comm(pid),
                "target": targets is None and pid not in acc.followed or
                bool(targets and pid in targets),
                "on_cpu_s": round(by.get("on_cpu", 0.0), 4),
                "accounted_s": round(sum(by.values()), 4)}
    return {"id": node, "kind": "resource"}


def heaviest_waits(acc, pids=None):
    """{pid: (node, cause, seconds)} of each process's heaviest non-idle use of its time: a
    wait, or its own work on CPU (node 'cpu work'); a process with no such time is left out.
    One pass over the edges (pids: only those)."""
    best = {}
    for (t, node, cause), s in acc.edges.items():
        if cause in IDLE_CAUSES or s <= 0 or (pids is not None and t not in pids):
            continue
        if t not in best or s > best[t][2]:
            best[t] = (node, cause, s)
    return best


def heaviest_wait(acc, pid):
    return heaviest_waits(acc, (pid,)).get(pid)


# A process waited for is the hold-up only if its heaviest non-idle use of its time covers at
# least this share of the time the previous step waited for it; otherwise it was mostly idle
# then. Measured against that wait, not against the process's own total: a server's helper
# threads that sleep all along (redis's bio threads, a pool's spares) would otherwise outweigh
# the one thread that served the wait.
BUSY_SHARE_OF_WAIT = 0.5


def chain(acc, start):
    """Follow the waits from process `start`: at the target, its heaviest non-idle use of its
    time; at each process it waited for, that use too if it covers at least half the time
    waited for it (see BUSY_SHARE_OF_WAIT), else the process was idle: the knot. [{pid, comm,
    for, cause, seconds, share}], and the knot where the chain ends."""
    steps, seen, pid = [], [], start
    knot = None
    while len(steps) < MAX_CHAIN:
        seen.append(pid)
        by = acc.by_tgid.get(pid, {})
        total = sum(by.values())
        best = heaviest_wait(acc, pid)
        if pid != start and total > 0 and \
                (best is None or best[2] < BUSY_SHARE_OF_WAIT * steps[-1]["seconds"]):
            idle = max(IDLE_CAUSES, key=lambda c: by.get(c, 0.0))
            if by.get(idle, 0.0) > 0:  # it was idle while we waited for it
                knot = {"nodes": [f"pid:{pid}"], "what": idle,
                        "share": round(by[idle] / total, 3)}
                break
        if best is None:
            knot = {"nodes": [f"pid:{pid}"], "what": "idle"}
            break
        node, cause, secs = best
        steps.append({"pid": pid, "comm": acc.comm(pid), "for": node, "cause": cause,
                      "seconds": round(secs, 4),
                      "share": round(secs / total, 3) if total else 0.0})
        if not node.startswith("pid:"):
            knot = {"nodes": [f"pid:{pid}", node] if cause == "on_cpu" else [node],
                    "what": cause}
            break
        nxt = int(node[4:])
        if nxt in seen:  # a cycle: these processes wait on each other (or on themselves)
            cycle = seen[seen.index(nxt):]
            knot = {"nodes": [f"pid:{p}" for p in cycle], "what": cause}
            break
        if nxt not in acc.by_tgid:  # not followed: what it did is unknown
            knot = {"nodes": [node], "what": "unknown"}
            break
        pid = nxt
    return {"steps": steps, "knot": knot}


def settle_idle_waits(acc):
    """Host-wide, a wait on a process that was itself idle while waited for (a shell waiting
    for its `sleep`, whoever reads that shell's output, a client of an idle server) is idle
    time: the chain from it ends in a voluntary sleep (chain's knot), not in a resource, and a
    host has many such waits at any time. Moves those seconds from ipc to sleep, per process
    and edge (the books still balance), until no more move: a wait on a process that only
    waited on idle ones is idle too. For one target the wait stays ipc, with its knot."""
    moved = True
    while moved:  # each pass can only make more processes idle: it ends
        moved = False
        best = heaviest_waits(acc)  # once per pass, not per edge (thousands of them host-wide)
        for (t, node, cause), secs in list(acc.edges.items()):
            if cause != "ipc" or secs <= 0 or not node.startswith("pid:"):
                continue
            peer = int(node[4:])
            if peer not in acc.by_tgid or peer == t:
                continue
            if peer not in best or best[peer][2] < BUSY_SHARE_OF_WAIT * secs:
                acc.by_tgid[t]["ipc"] -= secs
                acc.by_tgid[t]["sleep"] += secs
                del acc.edges[(t, node, cause)]
                acc.edges[(t, node, "sleep")] += secs
                moved = True
