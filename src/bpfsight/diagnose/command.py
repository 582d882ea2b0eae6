"""`bpfsight diagnose`: one run measures, together, where the target's threads spend their time
and what ended each wait (thread-state accounting, diagnose.bpf.c) and every resource's USE
figures (biolatency and syscount programs from the tool suite, /proc counters); it checks its
own books against the kernel's counters, draws the wait-for graph, and findings.judge names the
bottleneck. Modes: a process list, a cgroup, the whole host, or a command run under it
(`diagnose -- CMD ARGS...`), once or every --interval seconds."""
import contextlib
import os
import time

from ..bpf.object import load_all
from ..errors import UsageError
from ..outfile import output_file, write_outputs
from ..report.histogram import Log2Histogram
from ..target import apply_target, resolve_cgroup, resolve_pid
from ..tool import Options, StopSignal, Tool, open_spec, output_for, positive_int, select_hooks
from ..tools.biolatency import Biolatency
from ..tools.syscount import Syscount
from .python import PythonEvidence, add_to_verdict
from . import procfs
from .states import ThreadStates

NET_DROP_COUNTERS = [("TcpExt", "ListenOverflows"), ("TcpExt", "ListenDrops"),
                     ("TcpExt", "TCPBacklogDrop"), ("TcpExt", "TCPRcvQDrop"),
                     ("TcpExt", "TCPOFODrop"), ("TcpExt", "TCPZeroWindowDrop"),
                     ("Udp", "RcvbufErrors"), ("Udp", "SndbufErrors"), ("Ip", "InDiscards")]
DEFAULT_DURATION = 10
HOST_TABLE_ROWS = 10


def pid_list(text):
    try:
        pids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"invalid PID list {text!r}: expected numbers separated by commas")
    if not pids or any(p <= 0 for p in pids):
        raise UsageError(f"invalid PID list {text!r}")
    return pids


def _open_tool(tool, **options):
    return tool.open(Options(tool, **options))


class Target:
    """What one diagnose run looks at: pids, a cgroup, or the whole host."""

    def __init__(self, pids=None, cgroup=None, label=None):
        self.pids = pids
        self.cgroup = cgroup
        self.label = label  # what to call it instead (a command run under diagnose)

    @property
    def host(self):
        return not (self.pids or self.cgroup)

    def describe(self):
        if self.label:
            return self.label
        return (f"pid {','.join(map(str, self.pids))}" if self.pids else
                f"cgroup {self.cgroup}" if self.cgroup else "the whole host")

    def filters(self):
        """The kernel-side filter (apply_target's and the tools' pid= / cgroup=): one PID, or a
        cgroup; a list of PIDs is filtered in user space from the per-process accounting."""
        return {"pid": self.pids[0] if self.pids and len(self.pids) == 1 else None,
                "cgroup": self.cgroup}

    def members(self):
        """The processes to snapshot now."""
        if self.cgroup:  # the kernel filters by cgroup; /proc tells who is in it now
            from ..target import cgroup2_root
            root = cgroup2_root()
            path = self.cgroup if self.cgroup.startswith(root) else \
                os.path.join(root, self.cgroup.lstrip("/"))
            return procfs.cgroup_tgids(path)
        return procfs.target_tgids(self.pids)


def counter_deltas(before, after, window):
    cpu = {}
    for n, (busy1, tot1) in after["cpu"].items():
        busy0, tot0 = before["cpu"].get(n, (busy1, tot1))
        cpu[n] = 100.0 * (busy1 - busy0) / (tot1 - tot0) if tot1 > tot0 else 0.0
    vm = {k: after["vmstat"].get(k, 0) - before["vmstat"].get(k, 0) for k in after["vmstat"]}
    snmp0, snmp1 = before["snmp"], after["snmp"]

    def net(proto, key):
        return snmp1.get(proto, {}).get(key, 0) - snmp0.get(proto, {}).get(key, 0)

    hz = os.sysconf("SC_CLK_TCK")
    busy_s = sum(after["cpu"][n][0] - before["cpu"].get(n, after["cpu"][n])[0]
                 for n in after["cpu"]) / hz
    out = {"cpu_util_per_cpu": cpu, "cpu_util": sum(cpu.values()) / len(cpu) if cpu else 0.0,
           "cpu_busy_s": busy_s,
           "pgfault": vm.get("pgfault", 0), "pgmajfault": vm.get("pgmajfault", 0),
           "allocstall": sum(v for k, v in vm.items() if k.startswith("allocstall")),
           "pgscan_direct": sum(v for k, v in vm.items() if k.startswith("pgscan_direct")),
           "oom_kill": vm.get("oom_kill", 0),
           "refaults_per_s": (vm.get("workingset_refault_file", 0)
                              + vm.get("workingset_refault_anon", 0)) / window,
           "retrans": net("Tcp", "RetransSegs"), "out_segs": net("Tcp", "OutSegs"),
           "net_drops": {f"{p}.{k}": net(p, k) for p, k in NET_DROP_COUNTERS if net(p, k) > 0}}
    out["throttled"] = {}  # cgroup path -> its quota and the periods it was throttled in
    for path, (quota, period, periods, throttled) in after.get("quota", {}).items():
        p0, t0 = before.get("quota", {}).get(path, (0, 0, periods, throttled))[2:]
        if throttled > t0:
            out["throttled"][path] = {"quota_ms": quota / 1000, "period_ms": period / 1000,
                                      "periods": periods - p0, "throttled": throttled - t0}
    for res in ("cpu", "memory", "io"):
        if res in after["psi"] and res in before["psi"]:
            d = after["psi"][res]["some"] - before["psi"][res]["some"]
            out[f"psi_{res}_some_pct"] = round(100.0 * d / (window * 1e6), 1)
    return out


def disk_figures(hists, before, after, window):
    """Per disk: latency histogram (BPF) plus IOPS, throughput, utilisation, queue depth."""
    disks = {}
    for name, hist in hists.items():
        d0, d1 = before["disk"].get(name), after["disk"].get(name)
        if not d0 or not d1:
            continue
        delta = [b - a for a, b in zip(d0, d1)]
        ios = delta[0] + delta[4]
        disks[name] = {"hist": hist, "iops": ios / window,
                       "read_kbps": delta[2] * 512 / 1024 / window,
                       "write_kbps": delta[6] * 512 / 1024 / window,
                       "util": min(100.0, delta[9] / (window * 10.0)),
                       "queue_depth": delta[10] / (window * 1000.0)}
    return disks


class Diagnose(Tool):
    name = "diagnose"
    summary = "where the time goes, and which resource is the bottleneck"
    description = (
        "Thread-state accounting (on CPU, run queue, blocked on disk / network / lock / another\n"
        "process / memory / sleep), with what ended each wait (a timer, a reply from a peer, a\n"
        "thread releasing a lock, another process), plus the USE method over CPU, memory, disk,\n"
        "network, locks and syscalls, in one run; ends in a ranked verdict with evidence, the\n"
        "wait-for graph, and checks of its own books against the kernel's counters.\n"
        "With no target, the whole host. `diagnose [OPTIONS] -- CMD ARGS...` runs CMD and\n"
        "diagnoses its whole life, children included (in a cgroup of its own); the exit status\n"
        "is CMD's.")

    def add_arguments(self, p):
        t = p.add_mutually_exclusive_group()
        t.add_argument("-p", "--pid", type=pid_list, metavar="PID[,PID...]", help="these processes")
        t.add_argument("-c", "--cgroup", metavar="PATH", help="this cgroup v2 and its descendants")
        t.add_argument("--all", action="store_true", help="the whole host (the default)")
        p.add_argument("-d", "--duration", type=positive_int("duration"), default=None,
                       help=f"seconds to measure (default {DEFAULT_DURATION}; with --interval, "
                            "until Ctrl-C)")
        p.add_argument("-i", "--interval", type=positive_int("interval"), default=None,
                       help="one verdict every INTERVAL seconds (NDJSON with --json)")
        p.add_argument("--json", action="store_true", help="the JSON report (see docs/diagnose.md)")
        p.add_argument("--html", metavar="FILE", type=output_file(),
                       help="also write a self-contained HTML report")
        p.add_argument("command", nargs="*", metavar="-- CMD",
                       help="run CMD with its arguments and diagnose its whole life")

    def run(self, args):
        if args.command:
            if args.pid or args.cgroup or args.interval or args.duration:
                raise UsageError("-- CMD diagnoses the command's whole life: it takes no -p, "
                                 "-c, -d or --interval")
            from .runcmd import run_command
            return run_command(self, args)
        pids = [resolve_pid(p) for p in args.pid] if args.pid else None
        if args.cgroup:
            resolve_cgroup(args.cgroup)
        target = Target(pids, args.cgroup)
        out = output_for(args)
        with StopSignal() as stop:
            if not args.interval:
                seconds = args.duration or DEFAULT_DURATION
                report = self.measure(target, out, lambda: stop.sleep(seconds),
                                      f"for {seconds} s")
                self.emit(report, args, out)
                return 0
            # -d with --interval: that many seconds of windows (reloading between windows
            # takes a little time of its own, which is not counted)
            windows = max(1, round(args.duration / args.interval)) if args.duration else None
            done = 0
            while not stop.stopped and (windows is None or done < windows):
                report = self.measure(target, out, lambda: stop.sleep(args.interval),
                                      f"every {args.interval} s" if done == 0 else None)
                done += 1
                self.emit(report, args, out, interval=True)
        return 0

    def emit(self, report, args, out, interval=False):
        if args.json:
            out.record(report)
        else:
            from ..report import diagnose as render
            out.text(render.terminal(report) + ("\n" if interval else ""))
        if args.html:
            from ..report import diagnose as render
            write_outputs(self.name, [(args.html, render.html(report))])

    def measure(self, target, out, wait, banner=None):
        """One window: load and attach, wait() (returns when the window should end; a dict it
        returns goes into the report as "command"), detach, read, judge. The banner, when
        given, says the programs are attached. Returns the report (plain data)."""
        pids = target.pids
        tgids = procfs.target_tgids(pids) if pids else None
        spec = open_spec("diagnose")
        apply_target(spec, **target.filters())
        states = ThreadStates(spec, follow=not target.host, host=target.host)
        select_hooks(spec, "diagnose")
        bio = _open_tool(Biolatency(), disk=True)  # every disk: a target's I/O may be anyone's
        # host-wide, syscalls are counted at exit only: no entry timestamps
        sysc = _open_tool(Syscount(), latency=not target.host, **target.filters())
        netns_pid = pids[0] if pids and len(pids) == 1 else "self"
        # one CPython process: where its Python code blocked, by line
        python = PythonEvidence.open(pids[0]) if pids and len(pids) == 1 else None
        with contextlib.ExitStack() as stack:
            objs = [stack.enter_context(o) for o in
                    load_all([states.spec, bio, sysc] + ([python.spec] if python else []))]
            states.prepare(objs[0], netns_pid)
            for o in objs[:3]:
                o.attach_all()
            if python:
                python.attach(objs[3])
            # the window opens once everything is attached: the snapshots first, then the start
            snapshot = procfs.thread_snapshot(target.members())
            before_sched = {p: {t: (s["exec_ns"], s["delay_ns"]) for t, s in snapshot.items()
                                if s["tgid"] == p} for p in (pids or [])}
            before = procfs.snapshot_counters(netns_pid)
            ticks0 = self._cpu_ticks(tgids)
            start_ns = states.open_window(objs[0])
            if banner:
                out.banner(f"Diagnosing {target.describe()} {banner}... Hit Ctrl-C to end early.")
            result = wait()
            for o in objs:
                o.detach()
            end_ns = time.monotonic_ns()
            after = procfs.snapshot_counters(netns_pid)
            ticks1 = self._cpu_ticks(tgids)
            after_sched = {p: procfs.process_schedstat(p) for p in (pids or [])}
            window = (end_ns - start_ns) / 1e9
            acc = states.account(objs[0], end_ns, snapshot, tgids)
            per_cpu = objs[0].map("runq_hist")[0]  # one record per CPU
            runq = Log2Histogram.from_record(
                {"slots": per_cpu["slots"].sum(axis=0), "total": per_cpu["total"].sum()}, "usecs")
            disk_hists = self._disk_hists(objs[1])
            syscalls = self._syscalls(objs[2])
            python_found = python.read(objs[3]) if python else None
        from . import checks, graph  # after the window: off the start-up path
        from .findings import Evidence, judge, quota_words
        counters = counter_deltas(before, after, window)
        if counters["throttled"]:  # which processes that waited for a CPU were held by a quota
            acc.throttled = procfs.throttled_processes(
                [p for p, by in acc.by_tgid.items() if by["runqueue"] >= 0.01],
                counters["throttled"])
        hz = os.sysconf("SC_CLK_TCK")
        proc_cpu = ((ticks1[0] - ticks0[0]) / hz, (ticks1[1] - ticks0[1]) / hz)
        target_set = set(tgids) if tgids else None
        if target.host:
            graph.settle_idle_waits(acc)
        breakdown = acc.totals(target_set)
        ncpu = len(counters["cpu_util_per_cpu"])
        own_checks = self._checks(target, acc, breakdown, counters, window, ncpu, snapshot,
                                  before_sched, after_sched, end_ns)
        if isinstance(result, dict) and "cpu_s" in result:
            own_checks.insert(1, checks.command_cpu(breakdown["on_cpu"], result["cpu_s"]))
        wait_graph = graph.build(acc, target_set)
        suffering = self._suffering(acc)
        chains = [graph.chain(acc, p) for p in (pids or [])] if pids else \
            [graph.chain(acc, r["pid"]) for r in suffering[:1]]
        for step in (s for c in chains for s in c["steps"]):
            if step["cause"] == "runqueue" and step["pid"] in acc.throttled:
                q = acc.throttled[step["pid"]]
                step["throttled"] = {**q, "words": quota_words(q)}
        e = Evidence(window, breakdown, acc, tgids, runq,
                     disk_figures(disk_hists, before, after, window), counters, syscalls,
                     proc_cpu, ncpu, host=target.host, chains=chains)
        findings, verdict = judge(e)
        if not all(c["ok"] for c in own_checks):
            failed = ", ".join(c["name"] for c in own_checks if not c["ok"])
            verdict["confidence"] = "low"
            verdict["summary"] += f" (less certain: the accounting failed a check: {failed})"
        else:
            verdict["confidence"] = "normal"
        add_to_verdict(verdict, python_found)
        report = {"target": {"pids": pids, "cgroup": target.cgroup, "host": target.host,
                             "comms": {str(t): acc.comms.get(t) for t in (pids or [])},
                             "threads": len(snapshot)},
                  "duration_s": round(window, 3),
                  "time_breakdown": {k: round(v, 4) for k, v in breakdown.items()},
                  "findings": findings, "verdict": verdict, "checks": own_checks,
                  "wait_for": {**wait_graph, "chains": chains},
                  "peers": acc.peers[:20],
                  "followed": [{"pid": p, "comm": acc.comm(p),
                                "time_breakdown": {k: round(v, 4) for k, v in
                                                   acc.by_tgid.get(p, {}).items()}}
                               for p in acc.followed],
                  "lost_intervals": acc.lost, "missing_stacks": acc.stack_errors,
                  "untraced_switches_s": round(acc.hidden_s, 4),
                  "blocked_stacks": acc.blocked_stacks()}
        if target.host:
            report["processes"] = suffering[:HOST_TABLE_ROWS]
        if isinstance(result, dict):
            report["command"] = result
        if python_found:
            report["python"] = python_found
        return report

    @staticmethod
    def _checks(target, acc, breakdown, counters, window, ncpu, snapshot, before_sched,
                after_sched, end_ns):
        from . import checks
        out = [checks.capacity(breakdown["on_cpu"], ncpu, window)]
        if target.host:
            out.append(checks.host_busy(breakdown["on_cpu"], counters["cpu_busy_s"]))
        for pid, after in after_sched.items():
            by = acc.by_tgid.get(pid, {})
            out += checks.process_figures(pid, by.get("on_cpu", 0.0), by.get("runqueue", 0.0),
                                          before_sched.get(pid, {}), after,
                                          ended=acc.lifetimes["deaths"])
        out.append(checks.thread_seconds(sum(breakdown.values()), len(snapshot), window,
                                         acc.lifetimes, end_ns))
        return out

    @staticmethod
    def _suffering(acc):
        """Processes by the time their threads were not idle and not on CPU (waiting), most
        first, each with its dominant wait."""
        rows = []
        for pid, by in acc.by_tgid.items():
            if pid in acc.followed:
                continue
            waiting = {c: s for c, s in by.items() if c not in ("on_cpu", "sleep")}
            total = sum(waiting.values())
            if total <= 0 and by.get("on_cpu", 0) <= 0:
                continue
            dominant = max(waiting.items(), key=lambda kv: kv[1]) if total else ("none", 0.0)
            rows.append({"pid": pid, "comm": acc.comm(pid), "waiting_s": round(total, 4),
                         "on_cpu_s": round(by.get("on_cpu", 0.0), 4),
                         "dominant_wait": dominant[0], "dominant_s": round(dominant[1], 4)})
        rows.sort(key=lambda r: (-r["waiting_s"], -r["on_cpu_s"]))
        return rows

    @staticmethod
    def _cpu_ticks(tgids):
        if tgids:
            ticks = [procfs.proc_cpu_ticks(t) for t in tgids]
            return sum(u for u, _ in ticks), sum(s for _, s in ticks)
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[0] + v[1], v[2]

    @staticmethod
    def _disk_hists(obj):
        from ..blockio import disk_names
        names = disk_names()
        keys, vals = obj.map("hists").read_all()
        return {names.get(int(k["dev"]), f"dev{int(k['dev'])}"): Log2Histogram.from_record(v, "usecs")
                for k, v in zip(keys, vals)}

    @staticmethod
    def _syscalls(obj):
        from ..syscalls import syscall_name
        from ..tools.syscount import summarise
        keys, vals = obj.map("data").read_all()
        return [(syscall_name(k), n, t) for k, n, t, _ in summarise(keys, vals)]
