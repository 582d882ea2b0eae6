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


def _pct(x):
    return f"{100 * x:.0f}%"


def _us(v):
    return f"{v / 1000:.1f} ms" if v >= 1000 else f"{v:.0f} µs"


class Evidence:
    """Everything measured in one run, as plain data (what the findings are built from)."""

    def __init__(self, window_s, breakdown, accounting, tgids, runq, disks, counters,
                 syscalls, proc_cpu, ncpu, host=False):
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

    @property
    def busy(self):
        return sum(v for k, v in self.breakdown.items() if k != "sleep")

    def share(self, cause):
        return self.breakdown[cause] / self.busy if self.busy > 0 else 0.0

    @property
    def active(self):
        return self.busy / self.window >= MIN_BUSY_THREADS


def cpu_finding(e, syscall_storm):
    util = e.c["cpu_util"]
    rq, on = e.share("runqueue"), e.share("on_cpu")
    p99 = e.runq.percentile(99) if e.runq.count else 0
    ev = {"cpu_util_pct": {str(k): round(v, 1) for k, v in e.c["cpu_util_per_cpu"].items()},
          "runqueue_latency": e.runq.to_dict(), "runqueue_share": round(rq, 3),
          "on_cpu_share": round(on, 3), "psi_cpu_some_pct": e.c.get("psi_cpu_some_pct"),
          "top_processes_runqueue": e.acc.top_processes("runqueue"),
          "top_processes_on_cpu": e.acc.top_processes("on_cpu")}
    if e.active and rq >= 0.15:
        return "bottleneck", (f"waited for a CPU {_pct(rq)} of its busy time (run-queue p99 "
                              f"{_us(p99)}); CPUs {util:.0f}% busy: saturated"), ev
    cpus_busy = not e.host or util >= HOST_CPU_BOUND_UTIL
    if e.active and on >= 0.70 and not syscall_storm and cpus_busy:
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
          "top_stacks": e.acc.top_stacks("network"), "top_processes": e.acc.top_processes("network"),
          "top_syscalls": _top_syscalls(e, "network")}
    ratio = c["retrans"] / c["out_segs"] if c["out_segs"] else 0.0
    extra = f"; {c['retrans']} retransmits ({ratio:.1%} of segments)" if c["retrans"] else ""
    if e.active and share >= BOTTLENECK_SHARE:
        return "bottleneck", f"blocked on the network {_pct(share)} of its busy time{extra}", ev
    if c["retrans"] >= 10 and ratio >= 0.01:
        return "warning", f"TCP retransmits: {c['retrans']} ({ratio:.1%} of segments)", ev
    drops = sum(c["net_drops"].values())
    if drops:
        return "warning", f"network drops: {drops} ({_top_drop(c['net_drops'])})", ev
    return "ok", f"network: {c['retrans']} retransmits, no drops — not the problem", ev


def lock_finding(e):
    share = e.share("lock")
    ev = {"lock_wait_share": round(share, 3), "top_stacks": e.acc.top_stacks("lock"),
          "top_processes": e.acc.top_processes("lock"), "top_syscalls": _top_syscalls(e, "lock")}
    if e.active and share >= BOTTLENECK_SHARE:
        return "bottleneck", f"waiting for locks {_pct(share)} of its busy time", ev
    if e.active and share >= 0.05:
        return "warning", f"lock waits: {_pct(share)} of busy time", ev
    return "ok", f"locks: {_pct(share)} of busy time waiting — not the problem", ev


def _top_syscalls(e, cause):
    return [{"syscall": n, "seconds": round(s, 4)} for n, s in
            sorted(e.acc.syscalls[cause].items(), key=lambda kv: -kv[1])[:5]]


def _top_drop(drops):
    return ", ".join(f"{k} {v}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1])[:3])


def judge(e):
    """Findings (ranked) and the verdict."""
    sc_sev, sc_sum, sc_ev = syscall_finding(e)
    mem_sev, mem_sum, mem_ev, thrash = memory_finding(e)
    rows = [
        ("cpu",) + cpu_finding(e, syscall_storm=sc_sev == "bottleneck"),
        ("syscall", sc_sev, sc_sum, sc_ev),
        ("disk",) + disk_finding(e, thrash),
        ("memory", mem_sev, mem_sum, mem_ev),
        ("network",) + network_finding(e),
        ("lock",) + lock_finding(e),
    ]
    storm = sc_sev == "bottleneck"  # then the on-CPU time is the syscalls', not the CPU's
    weight = {"cpu": e.share("runqueue") if storm else max(e.share("runqueue"), e.share("on_cpu")),
              "syscall": e.share("on_cpu"),
              "disk": e.share("disk"), "memory": e.share("memory") + (e.share("disk") if thrash else 0),
              "network": e.share("network"), "lock": e.share("lock")}
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
    return findings, verdict


__all__ = ["Evidence", "judge", "CAUSES"]
