"""Thread-state accounting: load diagnose.bpf.o for the target, and at the end turn its maps
(closed intervals keyed by where each wait blocked and what ended it, open intervals, pre-window
waits, waits for TCP peers) plus /proc snapshots into thread-seconds per cause, per process,
with evidence: the top kernel stacks and wakers of each cause, lock words, and the wait-for
edges between processes and resources."""
import os
from collections import defaultdict

from ..report.grouped import comm_of
from . import procfs
from .classify import (CAUSES, NO_WAKER, WAKER_TASK, WF_HANDOFF, WF_KTHREAD, Waker,
                       classify_wait, describe_waker, wait_site)

KIND_ONCPU, KIND_RUNQ, KIND_BLOCKED = 0, 1, 2
KSTACK_SKIPPED, KSTACK_UNSEEN = -1, -100
MAX_FRAMES = 64
# futex words this close belong to one lock object (bpf/diagnose.bpf.c SAME_LOCK_BYTES)
SAME_LOCK_BYTES = 128
# a futex word is a lock when at least this share of the waits its own threads ended on it
# were hand-overs (the waker had itself waited on it): threads take turns on it
LOCK_HANDOFF_SHARE = 0.5


def _waker(rec):
    return Waker(int(rec["type"]), int(rec["vec"]), int(rec["sock"]), int(rec["flags"]),
                 int(rec["tgid"]))


class Wait:
    """One kind of blocked interval, summed: who waited, where, what ended it, how long."""
    __slots__ = ("tgid", "site", "frames", "syscall", "addr", "waker", "seconds", "count",
                 "kthread", "cause")

    def __init__(self, tgid, site, frames, syscall, addr, waker, seconds, count, kthread):
        self.tgid, self.site, self.frames, self.syscall = tgid, site, frames, syscall
        self.addr, self.waker, self.seconds, self.count = addr, waker, seconds, count
        self.kthread = kthread
        self.cause = None


class Accounting:
    """Thread-seconds by (tgid, cause), and evidence: the stacks, syscalls and wakers behind
    each cause, lock words, and wait-for edges (tgid -> node: seconds)."""

    def __init__(self):
        self.by_tgid = defaultdict(lambda: dict.fromkeys(CAUSES, 0.0))
        self.stacks = defaultdict(lambda: defaultdict(float))   # cause -> frames tuple -> s
        self.syscalls = defaultdict(lambda: defaultdict(float))  # cause -> syscall -> s
        self.wakers = defaultdict(lambda: defaultdict(float))    # cause -> waker text -> s
        self.edges = defaultdict(float)                          # (tgid, node, cause) -> s
        self.locks = {}       # (tgid, lowest address) -> {seconds, handoff_s, waits, threads}
        self.peers = []       # [{pid, peer, seconds, count, owner}]
        self.comms = {}
        self.followed = {}    # tgid -> seconds accounted (processes followed one level down)
        self.lost = 0
        self.stack_errors = 0
        self.hidden_s = 0.0   # time in gaps whose switch-out was never traced
        self.runq_after_futex = defaultdict(float)  # (tgid, futex word) -> run-queue seconds
        self.throttled = {}   # tgid -> its cgroup's CPU quota throttling (procfs.throttled_processes)

    def add(self, tgid, cause, seconds, frames=None, syscall=None, node=None, waker=None):
        self.by_tgid[tgid][cause] += seconds
        self.edges[(tgid, node or _RESOURCE_NODE[cause], cause)] += seconds
        if tgid in self.followed:
            return  # evidence is the target's own; a followed process is summed up elsewhere
        if frames:
            self.stacks[cause][tuple(frames[:12])] += seconds
        if syscall:
            self.syscalls[cause][syscall] += seconds
        if waker:
            self.wakers[cause][waker] += seconds

    def comm(self, tgid):
        if tgid not in self.comms:
            self.comms[tgid] = procfs.comm_of(tgid) or "?"
        return self.comms[tgid]

    def totals(self, tgids=None):
        out = dict.fromkeys(CAUSES, 0.0)
        for tgid, causes in self.by_tgid.items():
            if (tgids is None and tgid not in self.followed) or (tgids is not None
                                                                   and tgid in tgids):
                for c, s in causes.items():
                    out[c] += s
        return out

    def top_stacks(self, cause, n=5):
        items = sorted(self.stacks[cause].items(), key=lambda kv: -kv[1])[:n]
        return [{"seconds": round(s, 4), "frames": list(f)} for f, s in items]

    def top_wakers(self, cause, n=5):
        items = sorted(self.wakers[cause].items(), key=lambda kv: -kv[1])[:n]
        return [{"waker": w, "seconds": round(s, 4)} for w, s in items]

    def blocked_stacks(self, limit=200):
        """The heaviest (cause, kernel stack) pairs, for the report's off-CPU flame graph."""
        rows = [(cause, frames, secs) for cause, stacks in self.stacks.items()
                for frames, secs in stacks.items()]
        rows.sort(key=lambda r: -r[2])
        return [{"cause": c, "frames": list(f), "seconds": round(s, 4)} for c, f, s in rows[:limit]]

    def top_processes(self, cause, n=5, tgids=None):
        items = sorted(((t, c[cause]) for t, c in self.by_tgid.items() if c[cause] > 0
                        and t not in self.followed and (tgids is None or t in tgids)),
                       key=lambda kv: -kv[1])[:n]
        return [{"pid": t, "comm": self.comm(t), "seconds": round(s, 4)} for t, s in items]

    def top_locks(self, tgids=None, n=5):
        rows = [dict(v, pid=t, address=hex(a)) for (t, a), v in self.locks.items()
                if tgids is None or t in tgids]
        rows.sort(key=lambda r: -r["seconds"])
        return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                for r in rows[:n]]


# the node a wait points to in the wait-for graph, by cause (ipc and lock point to processes)
_RESOURCE_NODE = {"on_cpu": "cpu work", "runqueue": "cpu", "disk": "disk", "network": "network",
                  "lock": "kernel locks", "ipc": "another process", "memory": "memory",
                  "sleep": "idle", "other": "other"}


class ThreadStates:
    """The BPF side of thread-state accounting, for one diagnose run."""

    def __init__(self, spec, follow=False, host=False):
        """spec: the diagnose object, opened with its target applied; host: the whole host
        is the target."""
        from ..syscalls import syscall_nr
        from ..cpustat import sched_info_kept
        spec.set_global("targ_follow", follow)
        spec.set_global("futex_nr", syscall_nr("futex"))
        spec.set_global("use_run_delay", sched_info_kept())
        self.spec = spec
        self.host = host
        self.start_ns = None

    def open_window(self, obj):
        """Start accounting now (call once every program is attached); returns the start."""
        import time
        self.start_ns = time.monotonic_ns()
        obj.map("window")[0] = self.start_ns.to_bytes(8, "little")
        return self.start_ns

    def prepare(self, obj, netns_pid="self"):
        """Before attach: which syscalls' waits need no stack (see idle_syscalls), and which
        TCP ports listen now (see listen_ports)."""
        from ..errors import UsageError
        from ..syscalls import syscall_nr
        from .classify import IDLE_SYSCALLS
        idle = obj.map("idle_syscalls")
        for name, flag in [(n, 1) for n in IDLE_SYSCALLS] + [("futex", 2)]:
            try:
                idle[syscall_nr(name)] = bytes([flag])
            except UsageError:  # a syscall this architecture lacks (e.g. select on arm64)
                continue
        ports = obj.map("listen_ports")
        for port in procfs.listening_ports(netns_pid) | procfs.listening_ports("self"):
            ports[port.to_bytes(2, "little")] = b"\x01"

    def account(self, obj, end_ns, snapshot, tgids):
        """Accounting for the window [start_ns, end_ns] (call after detaching)."""
        from ..syscalls import syscall_name
        acc = Accounting()
        # names: the last one a process had (at its exit), else /proc's now, else the
        # snapshot's (a command run under diagnose was snapshotted before its exec)
        gone, names = obj.map("exited").read_all()
        for tgid, name in zip(gone.tolist(), names.tolist()):
            acc.comms[tgid] = comm_of(name)
        for tid, s in snapshot.items():
            if s["tgid"] not in acc.comms:
                acc.comms[s["tgid"]] = procfs.comm_of(s["tgid"]) or s["comm"]
        kthreads = {}

        def kthread(tgid):
            if tgid not in kthreads:
                kthreads[tgid] = procfs.is_kthread(tgid)
            return kthreads[tgid]

        stack_frames = _StackReader(obj.map("stacks"))
        followed_t, followed_v = obj.map("followed").read_all()
        acc.followed = {int(f): 0.0 for f in followed_t}
        for tgid, proc in zip(followed_t.tolist(), followed_v):
            acc.comms.setdefault(tgid, proc["comm"].decode(errors="replace"))
        waits = []

        def blocked(tgid, cause, waker, seconds, count=1):
            nr = int(cause["syscall"])
            name = syscall_name(nr) if nr >= 0 else None
            kstack = int(cause["kstack"])
            frames = stack_frames(kstack) if kstack != KSTACK_UNSEEN else []
            site = wait_site(frames, name, int(cause["futex_op"]), bool(cause["iowait"]))
            waits.append(Wait(tgid, site, frames, name, int(cause["arg0"]), waker, seconds,
                              count, kthread(tgid)))

        keys, vals = obj.map("acct").read_all()
        for k, v in zip(keys, vals):
            tgid, kind, secs = int(k["tgid"]), int(k["kind"]), int(v["ns"]) / 1e9
            if kind == KIND_BLOCKED:
                blocked(tgid, k["cause"], _waker(k["waker"]), secs, int(v["count"]))
            else:
                acc.add(tgid, "on_cpu" if kind == KIND_ONCPU else "runqueue", secs)
                if kind == KIND_RUNQ and int(k["cause"]["syscall"]) >= 0:  # after a futex wait
                    acc.runq_after_futex[(tgid, int(k["cause"]["arg0"]))] += secs

        # open intervals: where each thread is at the end of the window
        tids, states = obj.map("threads").read_all()
        seen = set(int(x) for x in tids)
        for tid, st in zip(tids.tolist(), states):
            secs = max(end_ns - int(st["since"]), 0) / 1e9
            tgid, kind = int(st["tgid"]), int(st["kind"])
            # its closed stints on CPU, waits for one and waits of its last kind, summed in
            # its entry
            acc.add(tgid, "on_cpu", int(st["oncpu_ns"]) / 1e9)
            acc.add(tgid, "runqueue", int(st["runq_ns"]) / 1e9)
            if st["runq_futex_ns"]:
                acc.runq_after_futex[(tgid, int(st["cause"]["arg0"]))] += \
                    int(st["runq_futex_ns"]) / 1e9
            if st["blk_count"]:
                blocked(tgid, st["blk_cause"], _waker(st["blk_waker"]), int(st["blk_ns"]) / 1e9,
                        int(st["blk_count"]))
            if kind == KIND_BLOCKED:
                blocked(tgid, st["cause"], NO_WAKER, secs)
            elif kind == KIND_RUNQ:
                acc.add(tgid, "runqueue", secs)
            else:
                self._open_on_cpu(acc, waits, tgid, tid, int(st["exec"]), secs,
                                  int(st["pending_runq"]) / 1e9, syscall_name)

        # blocked since before the window, then woken in it: the cause as /proc showed it
        pre_tids, pres = obj.map("prewindow").read_all()
        seen.update(pre_tids.tolist())
        for tid, pre in zip(pre_tids.tolist(), pres):
            self._waits_from_snapshot(waits, snapshot.get(tid), int(pre["tgid"]),
                                      int(pre["ns"]) / 1e9, _waker(pre["waker"]), syscall_name)

        # no event at all in the window: the kernel's own counters say how long each such
        # thread ran and waited to run; the rest it was blocked where /proc showed it
        window = (end_ns - self.start_ns) / 1e9
        for tid, s in snapshot.items():
            if tid in seen:
                continue
            now = procfs.thread_schedstat(s["tgid"], tid)
            if now is None:
                continue  # exited before the window opened (or without a traced switch)
            ran = min(max(now[0] - s["exec_ns"], 0) / 1e9, window)
            waited = min(max(now[1] - s["delay_ns"], 0) / 1e9, window - ran)
            acc.add(s["tgid"], "on_cpu", ran)
            acc.add(s["tgid"], "runqueue", waited)
            rest = window - ran - waited
            if rest > 0:
                self._waits_from_snapshot(waits, s, s["tgid"], rest, NO_WAKER,
                                          syscall_name)

        self._classify(acc, waits)
        if tgids is not None:
            keep = set(tgids) | set(acc.followed)
            for x in list(acc.by_tgid):
                if x not in keep:
                    del acc.by_tgid[x]
        for f in acc.followed:
            acc.followed[f] = sum(acc.by_tgid.get(f, {}).values())
        self._peers(acc, obj)
        acc.lost = obj.map("lost").sum_cpus()
        acc.hidden_s += obj.map("untraced").sum_cpus() / 1e9
        acc.lifetimes = obj.map("lifetimes").sum_cpus()
        acc.stack_errors = stack_frames.errors
        return acc

    def _open_on_cpu(self, acc, waits, tgid, tid, exec_at_start, secs, pending, syscall_name):
        """A thread on CPU at the end of the window, by our books, and the wait for a CPU that
        led to it (pending): the kernel's own sum_exec_runtime says how much it really ran (a
        thread whose switch-out was not traced looks on CPU until its next event, and the
        scheduler starts its clock a little before the switch: see close_stint); the rest it
        is blocked as /proc shows now."""
        now = procfs.thread_state(tgid, tid)
        if now is None or not exec_at_start:
            acc.add(tgid, "on_cpu", secs)
            acc.add(tgid, "runqueue", pending)
            return
        ran = max(now["exec_ns"] - exec_at_start, 0) / 1e9
        if ran >= secs:
            early = min(ran - secs, pending)
            acc.add(tgid, "on_cpu", secs + early)
            acc.add(tgid, "runqueue", pending - early)
            return
        acc.add(tgid, "on_cpu", ran)
        acc.add(tgid, "runqueue", pending)
        if secs - ran > 0.001:
            acc.hidden_s += secs - ran
            self._waits_from_snapshot(waits, now, tgid, secs - ran, NO_WAKER, syscall_name)
        else:
            acc.add(tgid, "on_cpu", secs - ran)

    @staticmethod
    def _waits_from_snapshot(waits, snap, tgid, seconds, waker, syscall_name):
        if snap is None:
            waits.append(Wait(tgid, "unknown", [], None, 0, waker, seconds, 1, False))
            return
        name = syscall_name(snap["syscall"]) if snap["syscall"] >= 0 else None
        frames = [snap["wchan"]] if snap["wchan"] and snap["wchan"] != "0" else []
        if not frames and name is None:
            # nothing readable (e.g. a process we may not inspect): an interruptible sleep
            # that lasted the whole window is idle; an uninterruptible one we cannot name
            site = "sleep" if snap["state"] == "S" and not waker.type else "unknown"
        else:
            site = wait_site(frames, name, snap["futex_op"])
        waits.append(Wait(tgid, site, frames, name, snap.get("arg0", 0), waker, seconds,
                          1, snap["kthread"]))

    def _classify(self, acc, waits):
        """Name each wait's cause and add it up. Futex waits are judged per lock object too: a
        word on which a process's threads mostly hand over to each other (the waker had itself
        waited on it) is a lock, and so is every wait on it, timeouts included."""
        lock_words = _lock_words(acc, waits)
        for w in waits:
            if w.site in ("futex", "lock") and w.syscall == "futex" and \
                    (w.tgid, _word(w.addr, lock_words.get(w.tgid, ()))) in acc.locks:
                w.cause = "lock"
            else:
                w.cause = classify_wait(w.site, w.waker, w.tgid, w.kthread)
        # a server woken by a request from a client over a unix socket was waiting for work
        # (the unix counterpart of the listening TCP ports the kernel side knows)
        served = procfs.unix_served({(w.tgid, w.waker.tgid) for w in waits if w.cause == "ipc"})
        for w in waits:
            node = None
            if w.cause == "ipc" and (w.waker.tgid == os.getpid()  # diagnose: a command's gate
                                     or (w.tgid, w.waker.tgid) in served):
                w.cause = "sleep"
            # host-wide, a socket wait nothing ended in the window is a server (or a client of
            # an idle peer) waiting for work that did not come: idle, as one woken by a
            # request is. For one target it stays network: stuck on its peer.
            if self.host and w.cause == "network" and not w.waker.type:
                w.cause = "sleep"
            if w.cause == "ipc":
                node = f"pid:{w.waker.tgid}"
            elif w.cause == "lock" and w.syscall == "futex":
                node = f"pid:{w.tgid}"  # its own threads hold the lock
            text = describe_waker(w.waker, acc.comm) if w.waker.type else None
            acc.add(w.tgid, w.cause, w.seconds, w.frames, w.syscall, node, text)

    @staticmethod
    def _peers(acc, obj):
        """Waits ended by a TCP peer's segment, by peer; a local peer named by its process."""
        from ..net import addr
        keys, vals = obj.map("peer_waits").read_all()
        # by process and peer end: a client's connections to one server are one peer
        by_peer = defaultdict(lambda: [0.0, 0, set()])
        for k, v in zip(keys, vals):
            tgid = int(k["tgid"])
            if tgid not in acc.by_tgid:
                continue
            f = k["flow"]
            row = by_peer[(tgid, (addr(int(f["family"]), bytes(f["daddr"])), int(f["dport"])))]
            row[0] += int(v["ns"]) / 1e9
            row[1] += int(v["count"])
            row[2].add(int(f["sport"]))
        wanted = {}
        for tgid, peer in by_peer:
            wanted.setdefault(tgid, set()).add(peer)
        owners = procfs.tcp_endpoint_owners(wanted)
        for (tgid, peer), (secs, count, ports) in sorted(by_peer.items(), key=lambda r: -r[1][0]):
            owner = owners.get((tgid, peer))
            acc.peers.append({"pid": tgid, "peer": f"{peer[0]}:{peer[1]}",
                              "seconds": round(secs, 4), "count": count,
                              "connections": len(ports),
                              "owner": {"pid": owner[0], "comm": owner[1]} if owner else None})
            if owner and owner[0] != tgid:
                acc.comms.setdefault(owner[0], owner[1])
                # the network wait on a local peer is a wait for that process
                acc.edges[(tgid, "network", "network")] -= secs
                acc.edges[(tgid, f"pid:{owner[0]}", "network")] += secs


def _word(addr, words):
    """The lowest address of the lock object addr belongs to (words: sorted cluster starts)."""
    for start, end in words:
        if start <= addr <= end:
            return start
    return addr


def _lock_words(acc, waits):
    """Group each process's futex waits by lock object (addresses within SAME_LOCK_BYTES of
    each other), and record in acc.locks those that are locks. Returns {tgid: [(start, end)]}."""
    by_tgid = defaultdict(list)
    for w in waits:
        if w.syscall == "futex" and w.site in ("futex", "lock"):
            by_tgid[w.tgid].append(w)
    clusters = {}
    for tgid, ws in by_tgid.items():
        spans = []
        for a in sorted({w.addr for w in ws}):
            if spans and a - spans[-1][1] < SAME_LOCK_BYTES:
                spans[-1][1] = a
            else:
                spans.append([a, a])
        clusters[tgid] = [tuple(s) for s in spans]
        stats = defaultdict(lambda: {"seconds": 0.0, "handoff_s": 0.0, "sibling_s": 0.0,
                                     "waits": 0, "mutex": False})
        for w in ws:
            s = stats[_word(w.addr, clusters[tgid])]
            s["seconds"] += w.seconds
            s["waits"] += w.count
            s["mutex"] |= w.site == "lock"  # FUTEX_WAIT / LOCK_PI: a mutex by its op
            sibling = (w.waker.type == WAKER_TASK and w.waker.tgid == tgid
                       and not w.waker.flags & WF_KTHREAD)
            if sibling:
                s["sibling_s"] += w.seconds
                if w.waker.flags & WF_HANDOFF:
                    s["handoff_s"] += w.seconds
        for start, s in stats.items():
            handed = s["sibling_s"] > 0 and s["handoff_s"] >= LOCK_HANDOFF_SHARE * s["sibling_s"]
            if s["mutex"] or handed:
                end = next(e for b, e in clusters[tgid] if b == start)
                runq = sum(v for (t, a), v in acc.runq_after_futex.items()
                           if t == tgid and start <= a <= end)
                acc.locks[(tgid, start)] = {"seconds": s["seconds"], "waits": s["waits"],
                                            "runq_after_s": runq,
                                            "handoff_share": round(s["handoff_s"] / s["sibling_s"], 3)
                                            if s["sibling_s"] else None,
                                            "kind": "mutex" if s["mutex"] else "condition variable"}
    return clusters


class _StackReader:
    """Kernel stack ids -> function names (cached), counting ids that could not be stored."""

    def __init__(self, stack_map):
        self.map = stack_map
        self.cache = {}
        self.errors = 0

    def __call__(self, stack_id):
        if stack_id == KSTACK_SKIPPED:
            return []  # not collected on purpose (an idle syscall)
        if stack_id < 0:
            self.errors += 1
            return []
        if stack_id not in self.cache:
            import struct
            raw = self.map.lookup_bytes(stack_id.to_bytes(4, "little"))
            addrs = [a for a in struct.unpack(f"<{MAX_FRAMES}Q", raw) if a] if raw else []
            from ..profile.symbols import kernel_symbols
            names = kernel_symbols().lookup(addrs) if addrs else []
            # skip the scheduler's own frames: they are in every blocked stack
            self.cache[stack_id] = [n for n in names if not n.startswith(
                ("__schedule", "schedule", "__traceiter", "trace_", "__bpf_trace",
                 "bpf_trace_run", "bpf_prog_"))]
        return self.cache[stack_id]
