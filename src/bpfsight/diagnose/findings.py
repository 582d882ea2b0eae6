"""The USE method over each resource, and the verdict: every resource gets a finding
(bottleneck / warning / ok, a one-sentence summary with numbers, evidence), ranked; a resource
that is fine is exonerated in so many words; with nothing wrong the verdict is "none"."""
from .classify import CAUSES

SEVERITY_RANK = {"bottleneck": 0, "warning": 1, "ok": 2}
# a cause must explain this share of the target's busy time to be called the bottleneck...
BOTTLENECK_SHARE = 0.25
# ...and the target must be busy at all: at least 10% of one thread over the window
MIN_BUSY_THREADS = 0.10
# host-wide, "CPU-bound" also needs the CPUs busy: a mostly idle host's few busy threads are
# all on CPU, which says nothing about the CPUs limiting anything
HOST_CPU_BOUND_UTIL = 85
MIN_CPU_BOUND_CPUS = 0.5
# lock thrash: threads that hand a lock to each other at this rate or more, and spend most of
# their busy time waiting for it or, once handed it, for a CPU: a convoy burning the CPUs
LOCK_THRASH_FUTEX_RATE = 50_000
LOCK_FUTEX_SHARE_OF_CALLS = 0.5
LOCK_THRASH_SHARE = 0.25


def _pct(x):
    return f"{100 * x:.0f}%"


def _us(v):
    return f"{v / 1000:.1f} ms" if v >= 1000 else f"{v:.0f} µs"


class Evidence:
    """Everything measured in one run, as plain data (what the findings are built from)."""

    def __init__(self, window_s, breakdown, accounting, tgids, runq, disks, counters,
                 syscalls, proc_cpu, ncpu, host=False, chains=()):
        self.window = window_s
        self.breakdown = breakdown          # cause -> thread-seconds
        self.acc = accounting
        self.tgids = tgids
        self.runq = runq                    # Log2Histogram (usecs)
        self.disks = disks                  # name -> {hist, iops, kbps, util, aqu}
        self.c = counters                   # host counter deltas
        self.syscalls = syscalls            # [(name, count, total_ns)]
        self.proc_cpu = proc_cpu            # (utime_s, stime_s) of the target, or host's
        self.ncpu = ncpu
        self.host = host                    # the whole host is the target
        self.chains = list(chains)          # wait-for chains from the target (graph.chain)
        self.targets = set(tgids) if tgids else None

    @property
    def busy(self):
        return sum(v for k, v in self.breakdown.items() if k != "sleep")

    def share(self, cause):
        return self.breakdown[cause] / self.busy if self.busy > 0 else 0.0

    @property
    def active(self):
        return self.busy / self.window >= MIN_BUSY_THREADS


def cpu_finding(e, syscall_storm, runq_explained=0.0):
    """runq_explained: run-queue seconds another finding accounts for (a lock convoy's)."""
    util = e.c["cpu_util"]
    rq = max(e.breakdown["runqueue"] - runq_explained, 0.0) / e.busy if e.busy > 0 else 0.0
    on = e.share("on_cpu")
    p99 = e.runq.percentile(99) if e.runq.count else 0
    ev = {"cpu_util_pct": {str(k): round(v, 1) for k, v in e.c["cpu_util_per_cpu"].items()},
          "runqueue_latency": e.runq.to_dict(), "runqueue_share": round(rq, 3),
          "on_cpu_share": round(on, 3), "psi_cpu_some_pct": e.c.get("psi_cpu_some_pct"),
          "top_processes_runqueue": e.acc.top_processes("runqueue"),
          "top_processes_on_cpu": e.acc.top_processes("on_cpu")}
    if runq_explained:
        ev["runqueue_after_lock_handoffs_s"] = round(runq_explained, 4)
    # a target held back by its cgroup's CPU quota waits for a CPU while CPUs stand idle
    quota = next((e.acc.throttled[p] for p in sorted(e.targets or ()) if p in e.acc.throttled),
                 None)
    if quota:
        ev["cpu_quota"] = quota
    if e.active and rq >= 0.15 and quota:
        return "bottleneck", (f"waited for a CPU {_pct(rq)} of its busy time, "
                              f"{quota_words(quota)}, while the CPUs were {util:.0f}% busy: "
                              "raise the quota — more CPUs would not help"), ev
    if e.active and rq >= 0.15:
        return "bottleneck", (f"waited for a CPU {_pct(rq)} of its busy time (run-queue p99 "
                              f"{_us(p99)}); CPUs {util:.0f}% busy: saturated"), ev
    cpus_busy = not e.host or util >= HOST_CPU_BOUND_UTIL
    # and the target must use at least half a CPU: a thread on CPU 40% of the time and idle,
    # waiting for work, the rest (an event loop serving one client) has CPU to spare
    uses_cpu = e.breakdown["on_cpu"] / e.window >= MIN_CPU_BOUND_CPUS if e.window else False
    if e.active and on >= 0.70 and not syscall_storm and cpus_busy and uses_cpu:
        return "bottleneck", (f"on CPU {_pct(on)} of its busy time: CPU-bound (CPUs {util:.0f}% "
                              f"busy, run-queue p99 {_us(p99)}); profile it"), ev
    if util >= 85 or (e.active and rq >= 0.05):
        return "warning", (f"CPUs {util:.0f}% busy, run-queue p99 {_us(p99)}, "
                           f"{_pct(rq)} of busy time waiting for a CPU"), ev
    return "ok", f"CPU: {util:.0f}% busy, run-queue p99 {_us(p99)} — not the problem", ev


def syscall_finding(e):
    total = sum(n for _, n, _ in e.syscalls)
    rate = total / e.window if e.window else 0
    utime, stime = e.proc_cpu
    kshare = stime / (utime + stime) if utime + stime > 0 else 0.0
    top = sorted(e.syscalls, key=lambda r: (-r[2], -r[1]))[:5]
    top_n = sorted(e.syscalls, key=lambda r: -r[1])[:5]
    ev = {"rate_per_s": round(rate), "kernel_cpu_share": round(kshare, 3),
          "top_by_count": [{"syscall": n, "count": c, "total_ms": round(t / 1e6, 3)}
                           for n, c, t in top_n],
          "top_by_time": [{"syscall": n, "count": c, "total_ms": round(t / 1e6, 3)}
                          for n, c, t in top]}
    lead = f"{top_n[0][0]} {_pct(top_n[0][1] / total)}" if total else "none"
    storm = e.active and rate >= 50_000 and kshare >= 0.5 and e.share("on_cpu") >= 0.5
    if storm:
        return "bottleneck", (f"syscall storm: {rate:,.0f} syscalls/s (top: {lead}), "
                              f"{_pct(kshare)} of its CPU time in the kernel"), ev
    if rate >= 20_000:
        return "warning", f"{rate:,.0f} syscalls/s (top: {lead}), {_pct(kshare)} in the kernel", ev
    return "ok", f"syscalls: {rate:,.0f}/s (top: {lead}) — not the problem", ev


def disk_finding(e, thrash):
    share = e.share("disk")
    worst = max(e.disks.items(), key=lambda kv: kv[1]["hist"].percentile(99), default=None)
    ev = {"disks": {n: {**{k: v for k, v in d.items() if k != "hist"},
                        "latency": d["hist"].to_dict()} for n, d in e.disks.items()},
          "disk_wait_share": round(share, 3), "top_stacks": e.acc.top_stacks("disk"),
          "top_processes": e.acc.top_processes("disk"),
          "psi_io_some_pct": e.c.get("psi_io_some_pct")}
    desc = "no disk I/O"
    if worst:
        n, d = worst
        desc = (f"{n} p50 {_us(d['hist'].percentile(50))} p99 {_us(d['hist'].percentile(99))}, "
                f"{d['iops']:.0f} IOPS, {d['util']:.0f}% busy")
    if e.active and share >= BOTTLENECK_SHARE:
        if thrash:
            return "warning", (f"blocked on disk {_pct(share)} of its busy time ({desc}), but "
                               "as a symptom: the page cache is thrashing (see memory)"), ev
        return "bottleneck", f"blocked on disk I/O {_pct(share)} of its busy time ({desc})", ev
    if worst and (worst[1]["util"] >= 80 or worst[1]["hist"].percentile(99) >= 100_000):
        return "warning", f"disk busy or slow: {desc}", ev
    return "ok", f"disk: {desc} — not the problem", ev


def memory_finding(e):
    c = e.c
    share = e.share("memory")
    refault = c["refaults_per_s"]
    ev = {"memory_wait_share": round(share, 3), "major_faults": c["pgmajfault"],
          "minor_faults": c["pgfault"] - c["pgmajfault"], "direct_reclaim_stalls": c["allocstall"],
          "pages_scanned_direct": c["pgscan_direct"], "oom_kills": c["oom_kill"],
          "refaults_per_s": round(refault), "psi_memory_some_pct": c.get("psi_memory_some_pct"),
          "top_stacks": e.acc.top_stacks("memory"), "top_processes": e.acc.top_processes("memory")}
    thrash = e.active and refault >= 500 and (e.share("disk") + share) >= BOTTLENECK_SHARE
    if thrash:
        return "bottleneck", (f"page-cache thrash: {refault:,.0f} refaults/s, "
                              f"{c['allocstall']} direct-reclaim stalls; waiting on disk+memory "
                              f"{_pct(e.share('disk') + share)} of busy time"), ev, True
    if e.active and share >= BOTTLENECK_SHARE:
        return "bottleneck", (f"stalled on memory (faults/reclaim) {_pct(share)} of its busy "
                              f"time; {c['allocstall']} direct-reclaim stalls"), ev, False
    if c["oom_kill"] or c["allocstall"] or (c.get("psi_memory_some_pct") or 0) >= 5:
        return "warning", (f"memory pressure: {c['oom_kill']} OOM kills, {c['allocstall']} "
                           f"direct-reclaim stalls, {c['pgmajfault']} major faults"), ev, False
    return "ok", (f"memory: {c['pgmajfault']} major faults, no reclaim stalls"
                  " — not the problem"), ev, False


def network_finding(e):
    c = e.c
    share = e.share("network")
    ev = {"network_wait_share": round(share, 3), "retransmits": c["retrans"],
          "segments_out": c["out_segs"], "drops": c["net_drops"],
          "top_stacks": e.acc.top_stacks("network"),
          "top_processes": e.acc.top_processes("network", tgids=e.targets),
          "top_syscalls": _top_syscalls(e, "network"), "top_wakers": e.acc.top_wakers("network"),
          "peers": [p for p in e.acc.peers
                    if e.targets is None or p["pid"] in e.targets][:5]}
    ratio = c["retrans"] / c["out_segs"] if c["out_segs"] else 0.0
    extra = f"; {c['retrans']} retransmits ({ratio:.1%} of segments)" if c["retrans"] else ""
    peer = ""
    if ev["peers"]:
        p = ev["peers"][0]
        peer = f" (mostly for {p['peer']}"
        if p["owner"]:
            peer += f", pid {p['owner']['pid']} ({p['owner']['comm']})"
            m = _meanwhile(e.acc, p["owner"]["pid"])
            if m:
                peer += f", which was {_doing(m)}"
        peer += ")"
    if e.active and share >= BOTTLENECK_SHARE:
        return "bottleneck", f"blocked on the network {_pct(share)} of its busy time{peer}{extra}", ev
    if c["retrans"] >= 10 and ratio >= 0.01:
        return "warning", f"TCP retransmits: {c['retrans']} ({ratio:.1%} of segments)", ev
    drops = sum(c["net_drops"].values())
    if drops:
        return "warning", f"network drops: {drops} ({_top_drop(c['net_drops'])})", ev
    return "ok", f"network: {c['retrans']} retransmits, no drops — not the problem", ev


def lock_finding(e, convoy=None):
    share = e.share("lock")
    locks = e.acc.top_locks(e.targets)
    ev = {"lock_wait_share": round(share, 3), "top_stacks": e.acc.top_stacks("lock"),
          "top_processes": e.acc.top_processes("lock", tgids=e.targets),
          "top_syscalls": _top_syscalls(e, "lock"), "locks": locks,
          "top_wakers": e.acc.top_wakers("lock")}
    where = f" (futex word {locks[0]['address']}, a {locks[0]['kind']})" if locks else ""
    if convoy:
        ev["convoy"] = {k: round(v, 4) for k, v in convoy.items()}
        return "bottleneck", (f"CPUs saturated by lock thrash{where}: {convoy['futex_per_s']:,.0f} "
                              f"futex calls/s, {_pct(convoy['futex_time_share'])} of its busy "
                              "time inside them — fewer threads or less locking, not more "
                              "CPUs"), ev
    if e.active and share >= BOTTLENECK_SHARE:
        demand = (e.breakdown["on_cpu"] + e.breakdown["runqueue"] + e.breakdown["lock"]) / e.window
        got = e.breakdown["on_cpu"] / e.window
        ev["serialisation"] = {"demand_cpus": round(demand, 2), "got_cpus": round(got, 2),
                               "cpu_util_pct": round(e.c["cpu_util"], 1)}
        turns = ""
        if demand >= 1.5 * got and e.c["cpu_util"] < HOST_CPU_BOUND_UTIL:
            turns = (f"; its threads take turns: they want {demand:.1f} CPUs and get {got:.1f} "
                     f"while the CPUs are {e.c['cpu_util']:.0f}% busy — more CPUs would not help")
        return "bottleneck", f"waiting for locks {_pct(share)} of its busy time{where}{turns}", ev
    if e.active and share >= 0.05:
        return "warning", f"lock waits: {_pct(share)} of busy time{where}", ev
    return "ok", f"locks: {_pct(share)} of busy time waiting — not the problem", ev


def ipc_finding(e):
    """Waits another local process ended (a pipe, a unix socket, a signal): name it, and say
    what it was doing meanwhile (it was followed from the first such wait on)."""
    share = e.share("ipc")
    waited = {}
    for (t, node, cause), s in e.acc.edges.items():
        if cause == "ipc" and (e.targets is None or t in e.targets) and t not in e.acc.followed:
            waited[node] = waited.get(node, 0.0) + s
    edges = sorted(waited.items(), key=lambda kv: -kv[1])
    peers = []
    for node, secs in edges[:5]:
        pid = int(node[4:])
        peers.append({"pid": pid, "comm": e.acc.comm(pid), "seconds": round(secs, 4),
                      "meanwhile": _meanwhile(e.acc, pid)})
    ev = {"ipc_wait_share": round(share, 3), "peers": peers,
          "top_syscalls": _top_syscalls(e, "ipc"), "top_stacks": e.acc.top_stacks("ipc")}
    who, meanwhile = " other processes", ""
    if peers:
        p = peers[0]
        who = f" pid {p['pid']} ({p['comm']})"
        if p["meanwhile"]:
            meanwhile = f"; that process was {_doing(p['meanwhile'])}"
    if e.active and share >= BOTTLENECK_SHARE:
        return "bottleneck", f"waiting on{who} {_pct(share)} of its busy time{meanwhile}", ev
    if e.active and share >= 0.05:
        return "warning", f"waits on{who}: {_pct(share)} of busy time{meanwhile}", ev
    return "ok", f"other processes: {_pct(share)} of busy time waiting — not the problem", ev


def quota_words(q):
    """'throttled by its cgroup's CPU quota (5 ms per 100 ms) in 38 of 41 periods' from a
    procfs.throttled_processes() record."""
    return (f"throttled by its cgroup's CPU quota ({q['quota_ms']:g} ms per {q['period_ms']:g} "
            f"ms) in {q['throttled']} of {q['periods']} periods")


def _doing(m):
    """'on CPU 76% of its time' from a _meanwhile() record."""
    words = {"on_cpu": "on CPU", "runqueue": "waiting for a CPU", "sleep": "idle (sleeping)",
             "ipc": "waiting on another process", "other": "blocked (other)"}
    quota = f", {quota_words(m['throttled'])}" if m.get("throttled") else ""
    return (f"{words.get(m['cause'], 'blocked on ' + m['cause'])} {_pct(m['share'])} of its "
            f"time{quota}")


def _meanwhile(acc, pid):
    """A followed process's dominant use of its time (on CPU, a wait), or None if unknown."""
    by = acc.by_tgid.get(pid)
    if not by or sum(by.values()) <= 0:
        return None
    cause, secs = max(by.items(), key=lambda kv: kv[1])
    m = {"cause": cause, "share": round(secs / sum(by.values()), 3)}
    if cause == "runqueue" and pid in acc.throttled:
        m["throttled"] = acc.throttled[pid]
    return {**m, "doing": _doing(m)}


def _top_syscalls(e, cause):
    return [{"syscall": n, "seconds": round(s, 4)} for n, s in
            sorted(e.acc.syscalls[cause].items(), key=lambda kv: -kv[1])[:5]]


def _top_drop(drops):
    return ", ".join(f"{k} {v}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1])[:3])


def judge(e):
    """Findings (ranked) and the verdict."""
    sc_sev, sc_sum, sc_ev = syscall_finding(e)
    mem_sev, mem_sum, mem_ev, thrash = memory_finding(e)
    convoy = _lock_convoy(e)
    if convoy and sc_sev == "bottleneck":  # the storm is the lock's futex calls: say so there
        sc_sev, sc_sum = "warning", sc_sum + " — a lock convoy's futex calls (see lock)"
    cpu_row = ("cpu",) + cpu_finding(e, syscall_storm=sc_sev == "bottleneck" or bool(convoy),
                                     runq_explained=convoy["runq_after_s"] if convoy else 0.0)
    if convoy and cpu_row[1] == "bottleneck":
        # the threads' demand for CPU is the convoy's: they spin through the lock, and more
        # CPUs would only add contention
        cpu_row = ("cpu", "warning", cpu_row[2] + " — by the lock convoy (see lock)", cpu_row[3])
    rows = [
        cpu_row,
        ("syscall", sc_sev, sc_sum, sc_ev),
        ("disk",) + disk_finding(e, thrash),
        ("memory", mem_sev, mem_sum, mem_ev),
        ("network",) + network_finding(e),
        ("lock",) + lock_finding(e, convoy),
        ("ipc",) + ipc_finding(e),
    ]
    storm = sc_sev == "bottleneck" or bool(convoy)  # on-CPU time is the calls', not the CPU's
    weight = {"cpu": e.share("runqueue") if storm else max(e.share("runqueue"), e.share("on_cpu")),
              "syscall": e.share("on_cpu"),
              "disk": e.share("disk"), "memory": e.share("memory") + (e.share("disk") if thrash else 0),
              "network": e.share("network"),
              "lock": e.share("lock") + (convoy["runq_after_s"] / e.busy if convoy else 0),
              "ipc": e.share("ipc")}
    rows.sort(key=lambda r: (SEVERITY_RANK[r[1]], -weight[r[0]]))
    findings = [{"resource": r, "severity": s, "summary": summ, "evidence": ev}
                for r, s, summ, ev in rows]
    top = findings[0]
    if top["severity"] == "bottleneck":
        verdict = {"bottleneck": top["resource"], "summary": f"{top['resource'].upper()} is the "
                   f"bottleneck: {top['summary']}"}
    else:
        idle = e.breakdown["sleep"] / sum(e.breakdown.values()) if sum(e.breakdown.values()) else 1
        verdict = {"bottleneck": "none", "summary": (
            f"no bottleneck: the target was idle (sleeping) {_pct(idle)} of its time and no "
            "resource is saturated" if not e.active else
            "no bottleneck: no resource explains a large share of the target's time")}
    if e.chains and e.chains[0]["knot"]:
        verdict["knot"] = e.chains[0]["knot"]
    return findings, verdict


def _futex_rate(e):
    return sum(n for name, n, _ in e.syscalls if name == "futex") / e.window if e.window else 0.0


def _lock_convoy(e):
    """{'futex_per_s', 'futex_time_share', 'runq_after_s'} when the target's threads thrash a
    lock: futex calls at LOCK_THRASH_FUTEX_RATE or more, most of its syscalls, and a large
    share of its busy time spent inside them (waiting for the lock, waiting for a CPU once
    handed it, or in the kernel handing it over); else None. Where the syscalls were not timed
    (host-wide), the lock waits and the run-queue waits right after futex wakes stand in."""
    rate = _futex_rate(e)
    calls = sum(n for _, n, _ in e.syscalls)
    if not e.active or rate < LOCK_THRASH_FUTEX_RATE or not calls:
        return None
    futex_calls = sum(n for name, n, _ in e.syscalls if name == "futex")
    if futex_calls < LOCK_FUTEX_SHARE_OF_CALLS * calls:
        return None
    runq_after = sum(v["runq_after_s"] for (t, _), v in e.acc.locks.items()
                     if e.targets is None or t in e.targets)
    futex_s = sum(ns for name, _, ns in e.syscalls if name == "futex") / 1e9
    share = futex_s / e.busy if futex_s else (e.breakdown["lock"] + runq_after) / e.busy
    if share < LOCK_THRASH_SHARE:
        return None
    return {"futex_per_s": rate, "futex_time_share": share, "runq_after_s": runq_after}
__all__ = ["Evidence", "judge", "CAUSES"]
