"""lockstat: who waits for locks, and how long. Kernel locks (lock:contention_begin/end, as perf
lock contention) and user-space mutexes (futex wait syscalls, as a contended pthread mutex
sleeps), aggregated by caller stack, by lock address (-a) or by thread (-t), with count, total,
maximum and average wait, like `perf lock contention` and BCC's klockstat."""
import re

from .. import pyframes
from ..profile.stacks import STACK_NONE, StackDecoder, describe_errors, stack_errors
from ..profile.symbols import Symbolizer
from ..report.grouped import comm_of
from ..report.output import clock_hms
from ..tool import (TIMESTAMP, Option, StopSignal, Tool, event_ring, flag, output_for,
                    positive_int, stream_loop)

BY = {"caller": 0, "addr": 1, "thread": 2}
KINDS = {0: "kernel", 1: "futex"}
# include/trace/events/lock.h LCB_F_*
LCB_SPIN, LCB_READ, LCB_WRITE, LCB_RT, LCB_PERCPU, LCB_MUTEX = 1, 2, 4, 8, 16, 32
FUTEX_OPS = {0: "wait", 6: "lock_pi", 9: "wait_bitset", 11: "wait_requeue_pi", 13: "lock_pi2",
             0xFF: "futex_wait"}
# Frames of the locking machinery itself, skipped to find the kernel caller (as perf does with
# the __lock_text section and the scheduler).
LOCK_FRAME = re.compile(r"(spin|mutex|rwsem|rwlock|rt_mutex|_down_|^down|percpu_down|"
                        r"_lock|lock_|osq_|schedule|__sched|preempt_schedule)", re.I)
# User frames inside the C library's locking, skipped to find who took the mutex.
LIBC_FILE = re.compile(r"/(libc|libpthread|ld-linux[^/]*)[-.][^/]*$")
HEADER = "%10s %12s %12s %12s %14s   %s"


def lock_type(flags):
    """perf lock contention's names for a lock's LCB_F_* flags."""
    rw = ":R" if flags & LCB_READ else ":W" if flags & LCB_WRITE else ""
    if flags & LCB_PERCPU:
        return "pcpu-sem" + rw
    if flags & LCB_RT:
        return ("rwlock-rt" + rw) if rw else "rt-mutex"
    if flags & LCB_MUTEX:
        return "mutex-spin" if flags & LCB_SPIN else "mutex"
    if flags & LCB_SPIN:
        return ("rwlock" + rw) if rw else "spinlock"
    return ("rwsem" + rw) if rw else "semaphore"


def fmt_ns(ns):
    for unit, div in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= div:
            return f"{ns / div:.2f} {unit}"
    return f"{ns:.0f} ns"


# struct lock_key and struct lock_val (bpf/lockstat.bpf.c): the tool reads them from the
# object's BTF; kept for bpfsight.exporter.collectors, which still names them.
def stack_addrs(stackmap, stack_id):
    """The return addresses of one stack in a BPF stack-trace map, leaf first."""
    import numpy as np
    raw = stackmap.lookup_bytes(int(stack_id).to_bytes(4, "little", signed=True)) \
        if stack_id >= 0 else None
    ips = np.frombuffer(raw, dtype="<u8") if raw else np.zeros(0, "<u8")
    return [int(ip) for ip in ips if ip]


def kernel_caller(frames):
    return next((f for f in frames if not LOCK_FRAME.search(f)), frames[-1] if frames else "")


def user_caller(frames, modules):
    """The first frame outside the C library's locking: the code that took the mutex."""
    for name, module in zip(frames, modules):
        if not LIBC_FILE.search(module or ""):
            return name
    return frames[0] if frames else ""


def python_caller(frames):
    """The innermost Python frame (`function (file:line)`): the line that waited."""
    return next((f for f in frames if pyframes.PYTHON_FRAME.match(f)), None)


class Lockstat(Tool):
    name = "lockstat"
    summary = "kernel lock and user mutex (futex) contention by process and stack"
    description = ("Time waiting for locks. Kernel locks: lock:contention_begin/end (spinlocks, "
                   "mutexes, rwsems, ...). User mutexes: futex wait syscalls (FUTEX_WAIT*, "
                   "FUTEX_LOCK_PI*, futex_wait), where a contended pthread mutex sleeps; this "
                   "also counts condition-variable and join waits, and misses waits a mutex "
                   "spends spinning in user space before it sleeps (approx for mutexes). "
                   "Aggregated by caller stack, by lock address (-a) or by thread (-t). User "
                   "stacks are walked by frame pointer: through a C library built without them "
                   "the caller may show as the library's lock function; -a tells mutexes apart. "
                   "A CPython 3.10-3.13 target's (-p) waits carry the Python frames that waited "
                   "(the caller is the Python line), and waits to take its interpreter lock "
                   "show as type GIL (--no-python: native frames only).")

    target = intervals = True
    options = (
        flag("-a", "--lock-addr", group="by",
             help="aggregate by lock address (futex word for user mutexes)"),
        flag("-t", "--threads", help="aggregate by thread", group="by"),
        flag("-K", "--kernel-only", help="kernel locks only (no futex waits)", group="which"),
        flag("-U", "--user-only", help="user futex waits only (no kernel locks)", group="which"),
        Option("-E", "--entries", type=positive_int("entries"),
               help="print at most this many entries per section"),
        Option("-s", "--stack-depth", type=positive_int("stack depth"), default=None,
               help="print this many frames of each caller's stack"),
        pyframes.NO_PYTHON,
        TIMESTAMP)

    @staticmethod
    def aggregation(opts):
        return "addr" if opts.lock_addr else "thread" if opts.threads else "caller"

    def configure(self, spec, opts):
        by = self.aggregation(opts)
        spec.set_globals(targ_by=BY[by], targ_kernel=not opts.user_only,
                         targ_futex=not opts.kernel_only, wakeup_bytes=1)
        if by != "caller":
            spec.maps["stackmap"].max_entries = 1  # stacks are taken by caller only
        self._switch_off_missing(spec, opts)
        self._python = None
        if opts.pid and not (opts.no_python or opts.kernel_only):
            self._python = pyframes.configure(spec, opts.pid, self.name)

    def sized(self, spec, opts):
        if spec.programs.get("lockstat_contention_begin") and \
                spec.programs["lockstat_contention_begin"].autoload:
            spec.maps["lock_tid_starts"].max_entries = 1  # task storage is used instead

    def run(self, args):
        out = output_for(args)
        by = self.aggregation(args)
        spec = self.open(args)
        symbolizer = Symbolizer()
        with StopSignal() as stop, spec.load() as obj:
            if self._python is not None:
                pyframes.register(obj, self._python)
            obj.attach_all()
            waits = obj.map("waits")
            ring = event_ring(obj)
            out.banner("Tracing lock contention... Hit Ctrl-C to end.")
            try:
                self._loop(stop, ring, args, symbolizer,
                           lambda: self._report(out, args, by, obj, waits, symbolizer))
            finally:
                ring.close()
        return 0

    @staticmethod
    def _switch_off_missing(spec, opts):
        """-U/-K drop a side; so does a kernel without the futex_wait(2) syscall."""
        from ..bpf import features
        off = []
        if opts.user_only:
            off += [n for n in spec.programs if "contention" in n]
        if opts.kernel_only:
            off += [n for n in spec.programs if "futex" in n]
        if not features.tracepoint_exists("syscalls", "sys_enter_futex_wait"):
            off += ["lockstat_futex2_enter", "lockstat_futex2_exit"]
        for name in off:
            spec.programs[name].autoload = False

    @staticmethod
    def _loop(stop, ring, args, symbolizer, tick):
        """Report every interval; meanwhile snapshot the maps of each process as its first
        futex wait is seen, so its user stacks resolve even after it exits."""
        capture = lambda r: [symbolizer.capture(int(pid)) for pid in r.read_array("<u4")]  # noqa
        done = 0
        while True:
            stream_loop(stop, ring, capture, duration=args.interval)
            tick()
            done += 1
            if stop.stopped or (args.count is not None and done >= args.count):
                return

    def _report(self, out, args, by, obj, waits, symbolizer):
        keys, values = waits.read_all(delete=True)
        entries = [self._entry(k, v, by) for k, v in zip(keys, values)]
        if by == "caller":
            self._add_stacks(entries, obj, symbolizer)
        out.text()
        if args.timestamp:
            out.text(clock_hms())
        for kind in ("kernel", "futex"):
            if (kind == "kernel" and args.user_only) or (kind == "futex" and args.kernel_only):
                continue
            rows = sorted((e for e in entries if e["kind"] == kind),
                          key=lambda e: -e["total_ns"])[:args.entries]
            self._section(out, args, by, kind, rows)
        errors = stack_errors(obj.map("stack_errors"))
        warning = describe_errors(errors) if by == "caller" else None
        if warning:
            out.text(warning)

    @staticmethod
    def _entry(key, val, by):
        kind = KINDS[int(key["kind"])]
        flags = int(key["flags"])
        e = {"kind": kind, "contended": int(val["count"]), "total_ns": int(val["total_ns"]),
             "max_ns": int(val["max_ns"]), "comm": comm_of(val["comm"]),
             "type": lock_type(flags) if kind == "kernel" else
             "GIL" if key["py_gil_wait"] else FUTEX_OPS.get(flags, str(flags)),
             "stack_id": int(key["stack_id"]), "py_stack_id": int(key["py_stack_id"])}
        e["avg_ns"] = e["total_ns"] / e["contended"] if e["contended"] else 0
        if by == "addr":
            e["addr"] = int(key["addr"])
        if by == "thread":
            e["tid"] = int(key["id"])
        elif kind == "futex":
            e["pid"] = int(key["id"])
        return e

    def _add_stacks(self, entries, obj, symbolizer):
        decoder = StackDecoder(obj.map("stackmap"), symbolizer)
        reqs = {id(e): ((e.get("pid", 0), e["stack_id"], STACK_NONE) if e["kind"] == "kernel"
                        else (e["pid"], STACK_NONE, e["stack_id"])) for e in entries}
        pairs = decoder.decode(list(set(reqs.values())))
        python = pyframes.stacks(obj, self._python, (e["py_stack_id"] for e in entries))
        for e in entries:
            pair = pyframes.with_frames(pairs[reqs[id(e)]], python.get(e["py_stack_id"]))
            if e["kind"] == "kernel":
                e["stack"] = list(pair.kernel) or ["[Missed Kernel Stack]"]
                e["caller"] = kernel_caller(pair.kernel) if pair.kernel else e["stack"][0]
            else:
                e["stack"] = list(pair.user) or ["[Missed User Stack]"]
                modules = [symbolizer.module(e["pid"], a)
                           for a in stack_addrs(obj.map("stackmap"), e["stack_id"])]
                e["caller"] = (python_caller(pair.user) or user_caller(pair.user, modules)
                               if pair.user else e["stack"][0])

    def _section(self, out, args, by, kind, rows):
        what = "Kernel lock contention" if kind == "kernel" else \
            "User futex waits (mutex sleeps, condition variables, joins; approx: user-space " \
            "spinning is not seen)"
        who = {"caller": "caller", "addr": "address", "thread": "tid   comm"}[by]
        if kind == "futex" and by != "thread":
            who = "pid   comm   " + who
        out.text(f"{what}:")
        out.text(HEADER % ("contended", "total wait", "max wait", "avg wait", "type", who))
        for e in rows:
            out.text(HEADER % (e["contended"], fmt_ns(e["total_ns"]), fmt_ns(e["max_ns"]),
                               fmt_ns(e["avg_ns"]), e["type"], self._who(e, by)))
            for frame in e.get("stack", [])[:args.stack_depth or 0]:
                out.text(" " * 70 + frame)
            out.record({"tool": self.name, **{k: v for k, v in e.items()
                                              if k not in ("stack_id", "py_stack_id")},
                        "avg_ns": round(e["avg_ns"])})
        out.text()

    @staticmethod
    def _who(e, by):
        if by == "thread":
            return f"{e['tid']} {e['comm']}"
        where = hex(e["addr"]) if by == "addr" else e.get("caller", "")
        if e["kind"] == "futex":
            return f"{e['pid']} {e['comm']} {where}"
        return where
