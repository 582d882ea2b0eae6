"""Thread-state accounting: load diagnose.bpf.o for the target, and at the end turn its maps
(closed intervals, open intervals, pre-window waits) plus /proc snapshots into thread-seconds
per cause, per process, with the top kernel stacks of each cause as evidence."""
import os
from collections import defaultdict

from . import procfs
from .classify import CAUSES, classify_blocked

KIND_ONCPU, KIND_RUNQ, KIND_BLOCKED = 0, 1, 2
MAX_FRAMES = 64


def _dtypes():
    import numpy as np
    cause = np.dtype([("kstack", "<i4"), ("syscall", "<i4"), ("arg0", "<u4"), ("futex_op", "<u4"),
                      ("iowait", "u1"), ("dstate", "u1"), ("pad", "u1", (6,))])
    key = np.dtype([("tgid", "<u4"), ("kind", "<u4"), ("cause", cause)])
    val = np.dtype([("ns", "<u8"), ("count", "<u8")])
    state = np.dtype([("since", "<u8"), ("kind", "<u4"), ("tgid", "<u4"), ("cause", cause),
                      ("blocks", "<u4"), ("last_kstack", "<i4")])
    pre = np.dtype([("tgid", "<u4"), ("pad", "<u4"), ("ns", "<u8")])
    return key, val, state, pre


class Accounting:
    """Thread-seconds by (tgid, cause), and evidence: the stacks behind each cause."""

    def __init__(self):
        self.by_tgid = defaultdict(lambda: dict.fromkeys(CAUSES, 0.0))
        self.stacks = defaultdict(lambda: defaultdict(float))   # cause -> frames tuple -> s
        self.syscalls = defaultdict(lambda: defaultdict(float))  # cause -> syscall -> s
        self.comms = {}

    def add(self, tgid, cause, seconds, frames=None, syscall=None):
        self.by_tgid[tgid][cause] += seconds
        if frames:
            self.stacks[cause][tuple(frames[:12])] += seconds
        if syscall:
            self.syscalls[cause][syscall] += seconds

    def totals(self, tgids=None):
        out = dict.fromkeys(CAUSES, 0.0)
        for tgid, causes in self.by_tgid.items():
            if tgids is None or tgid in tgids:
                for c, s in causes.items():
                    out[c] += s
        return out

    def top_stacks(self, cause, n=5):
        items = sorted(self.stacks[cause].items(), key=lambda kv: -kv[1])[:n]
        return [{"seconds": round(s, 4), "frames": list(f)} for f, s in items]

    def blocked_stacks(self, limit=200):
        """The heaviest (cause, kernel stack) pairs, for the report's off-CPU flame graph."""
        rows = [(cause, frames, secs) for cause, stacks in self.stacks.items()
                for frames, secs in stacks.items()]
        rows.sort(key=lambda r: -r[2])
        return [{"cause": c, "frames": list(f), "seconds": round(s, 4)} for c, f, s in rows[:limit]]

    def top_processes(self, cause, n=5):
        items = sorted(((t, c[cause]) for t, c in self.by_tgid.items() if c[cause] > 0),
                       key=lambda kv: -kv[1])[:n]
        return [{"pid": t, "comm": self.comms.get(t) or procfs.comm_of(t) or "?",
                 "seconds": round(s, 4)} for t, s in items]


class ThreadStates:
    """The BPF side of thread-state accounting, for one diagnose run."""

    def __init__(self, spec_opener, args, start_ns):
        spec = spec_opener("diagnose", args)
        spec.set_global("targ_start_ns", start_ns)
        self.spec = spec
        self.start_ns = start_ns

    def skip_idle_stacks(self, obj):
        """Tell the kernel side which syscalls' waits need no stack (see idle_syscalls)."""
        from ..errors import UsageError
        from ..syscalls import syscall_nr
        from .classify import IDLE_SYSCALLS
        idle = obj.map("idle_syscalls")
        for name, flag in [(n, 1) for n in IDLE_SYSCALLS] + [("futex", 2)]:
            try:
                idle[syscall_nr(name)] = bytes([flag])
            except UsageError:  # a syscall this architecture lacks (e.g. select on arm64)
                continue

    def classify_key(self, cause, stack_frames, kthread):
        from ..syscalls import syscall_name
        nr = int(cause["syscall"])
        name = syscall_name(nr) if nr >= 0 else None
        frames = stack_frames(int(cause["kstack"]))
        return classify_blocked(frames, name, int(cause["futex_op"]), bool(cause["iowait"]),
                                kthread), frames, name

    def account(self, obj, end_ns, snapshot, tgids):
        """Accounting for the window [start_ns, end_ns] (call after detaching)."""
        from ..syscalls import syscall_name
        key_t, val_t, state_t, pre_t = _dtypes()
        acc = Accounting()
        for tid, s in snapshot.items():
            acc.comms.setdefault(s["tgid"], s["comm"])
        kthreads = {}

        def kthread(tgid):
            if tgid not in kthreads:
                kthreads[tgid] = procfs.is_kthread(tgid)
            return kthreads[tgid]

        stack_frames = _StackReader(obj.map("stacks"))
        selected = set(tgids) if tgids is not None else None

        def add_blocked(tgid, cause, seconds):
            c, frames, name = self.classify_key(cause, stack_frames, kthread(tgid))
            acc.add(tgid, c, seconds, frames, name)

        keys, vals = obj.map("acct", key=key_t, value=val_t).read_all()
        for k, v in zip(keys, vals):
            tgid, kind, secs = int(k["tgid"]), int(k["kind"]), int(v["ns"]) / 1e9
            if kind == KIND_BLOCKED:
                add_blocked(tgid, k["cause"], secs)
            else:
                acc.add(tgid, "on_cpu" if kind == KIND_ONCPU else "runqueue", secs)

        # open intervals: where each thread is at the end of the window
        tids, states = obj.map("threads", key="<u4", value=state_t).read_all()
        seen = set(int(t) for t in tids)
        for st in states:
            secs = max(end_ns - int(st["since"]), 0) / 1e9
            tgid, kind = int(st["tgid"]), int(st["kind"])
            if kind == KIND_BLOCKED:
                add_blocked(tgid, st["cause"], secs)
            else:
                acc.add(tgid, "on_cpu" if kind == KIND_ONCPU else "runqueue", secs)

        # blocked since before the window, then woken in it: the cause as /proc showed it
        pre_tids, pres = obj.map("prewindow", key="<u4", value=pre_t).read_all()
        seen.update(pre_tids.tolist())
        for tid, pre in zip(pre_tids.tolist(), pres):
            self._add_from_snapshot(acc, snapshot.get(tid), int(pre["tgid"]), int(pre["ns"]) / 1e9,
                                    syscall_name)

        # no event at all in the window: the whole window in the state /proc showed
        window = (end_ns - self.start_ns) / 1e9
        for tid, s in snapshot.items():
            if tid not in seen and os.path.exists(f"/proc/{s['tgid']}/task/{tid}"):
                if s["state"] == "R":
                    acc.add(s["tgid"], "on_cpu", window)
                else:
                    self._add_from_snapshot(acc, s, s["tgid"], window, syscall_name)
        if selected is not None:
            for t in list(acc.by_tgid):
                if t not in selected:
                    del acc.by_tgid[t]
        acc.lost = _percpu_sum(obj.map("lost"))
        acc.stack_errors = stack_frames.errors
        return acc

    @staticmethod
    def _add_from_snapshot(acc, snap, tgid, seconds, syscall_name):
        if snap is None:
            acc.add(tgid, "other", seconds)
            return
        name = syscall_name(snap["syscall"]) if snap["syscall"] >= 0 else None
        frames = [snap["wchan"]] if snap["wchan"] and snap["wchan"] != "0" else []
        if not frames and name is None:
            # nothing readable (e.g. a process we may not inspect): an interruptible sleep
            # that lasted the whole window is idle; an uninterruptible one we cannot name
            cause = "sleep" if snap["state"] == "S" else "other"
        else:
            cause = classify_blocked(frames, name, snap["futex_op"], False, snap["kthread"])
        acc.add(tgid, cause, seconds, frames, name)


class _StackReader:
    """Kernel stack ids -> function names (cached), counting ids that could not be stored."""

    def __init__(self, stack_map):
        self.map = stack_map
        self.cache = {}
        self.errors = 0

    def __call__(self, stack_id):
        if stack_id == -1:
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


def _percpu_sum(m):
    raw = m.lookup_bytes(bytes(4))
    import struct
    return sum(struct.unpack(f"<{len(raw) // 8}Q", raw)) if raw else 0
