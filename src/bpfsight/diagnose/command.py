"""`bpfsight diagnose`: one run measures, together, where the target's threads spend their time
(thread-state accounting, diagnose.bpf.c) and every resource's USE figures (biolatency and
syscount programs from the tool suite, /proc counters); findings.judge names the bottleneck."""
import contextlib
import os
import time

from ..bpf.object import load_all
from ..errors import UsageError
from ..outfile import output_file, write_outputs
from ..report.histogram import Log2Histogram, hist_dtype
from ..target import resolve_cgroup, resolve_pid
from ..tool import StopSignal, Tool, open_spec, output_for, positive_int, select_hooks
from . import procfs
from .findings import Evidence, judge
from .states import ThreadStates

NET_DROP_COUNTERS = [("TcpExt", "ListenOverflows"), ("TcpExt", "ListenDrops"),
                     ("TcpExt", "TCPBacklogDrop"), ("TcpExt", "TCPRcvQDrop"),
                     ("TcpExt", "TCPOFODrop"), ("TcpExt", "TCPZeroWindowDrop"),
                     ("Udp", "RcvbufErrors"), ("Udp", "SndbufErrors"), ("Ip", "InDiscards")]


def pid_list(text):
    try:
        pids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"invalid PID list {text!r}: expected numbers separated by commas")
    if not pids or any(p <= 0 for p in pids):
        raise UsageError(f"invalid PID list {text!r}")
    return pids


def _spec_opener(pids, cgroup):
    """Open a tool object with diagnose's target applied (one PID filters in the kernel; a
    list is filtered in user space from the per-process accounting)."""
    def opener(name, args=None):
        spec = open_spec(name)
        if pids and len(pids) == 1 and spec.has_global("targ_tgid"):
            spec.set_global("targ_tgid", pids[0])
        if cgroup and spec.has_global("targ_cgid"):
            cgid, level = resolve_cgroup(cgroup)
            spec.set_globals(targ_cgid=cgid, targ_cglevel=level)
        return spec
    return opener


def counter_deltas(before, after, window):
    cpu = {}
    for n, (busy1, tot1) in after["cpu"].items():
        busy0, tot0 = before["cpu"].get(n, (busy1, tot1))
        cpu[n] = 100.0 * (busy1 - busy0) / (tot1 - tot0) if tot1 > tot0 else 0.0
    vm = {k: after["vmstat"].get(k, 0) - before["vmstat"].get(k, 0) for k in after["vmstat"]}
    snmp0, snmp1 = before["snmp"], after["snmp"]

    def net(proto, key):
        return snmp1.get(proto, {}).get(key, 0) - snmp0.get(proto, {}).get(key, 0)

    out = {"cpu_util_per_cpu": cpu, "cpu_util": sum(cpu.values()) / len(cpu) if cpu else 0.0,
           "pgfault": vm.get("pgfault", 0), "pgmajfault": vm.get("pgmajfault", 0),
           "allocstall": sum(v for k, v in vm.items() if k.startswith("allocstall")),
           "pgscan_direct": sum(v for k, v in vm.items() if k.startswith("pgscan_direct")),
           "oom_kill": vm.get("oom_kill", 0),
           "refaults_per_s": (vm.get("workingset_refault_file", 0)
                              + vm.get("workingset_refault_anon", 0)) / window,
           "retrans": net("Tcp", "RetransSegs"), "out_segs": net("Tcp", "OutSegs"),
           "net_drops": {f"{p}.{k}": net(p, k) for p, k in NET_DROP_COUNTERS if net(p, k) > 0}}
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
        "Thread-state accounting (on CPU, run queue, blocked on disk / network / lock / memory /\n"
        "sleep) for the target's threads plus the USE method over CPU, memory, disk, network,\n"
        "locks and syscalls, in one run; ends in a ranked verdict with evidence.\n"
        "With no target, the whole host.")

    def add_arguments(self, p):
        t = p.add_mutually_exclusive_group()
        t.add_argument("-p", "--pid", type=pid_list, metavar="PID[,PID...]", help="these processes")
        t.add_argument("-c", "--cgroup", metavar="PATH", help="this cgroup v2 and its descendants")
        t.add_argument("--all", action="store_true", help="the whole host (the default)")
        p.add_argument("-d", "--duration", type=positive_int("duration"), default=10,
                       help="seconds to measure (default 10)")
        p.add_argument("--json", action="store_true", help="the JSON report (see docs/diagnose.md)")
        p.add_argument("--html", metavar="FILE", type=output_file(),
                       help="also write a self-contained HTML report")

    def run(self, args):
        pids = [resolve_pid(p) for p in args.pid] if args.pid else None
        if args.cgroup:
            resolve_cgroup(args.cgroup)
        out = output_for(args)
        report = self.measure(args, pids, out)
        from ..report import diagnose as render
        if args.json:
            out.record(report)
        else:
            out.text(render.terminal(report))
        if args.html:
            write_outputs(self.name, [(args.html, render.html(report))])
        return 0

    def measure(self, args, pids, out):
        opener = _spec_opener(pids, args.cgroup)
        tgids = procfs.target_tgids(pids) if pids else None
        if args.cgroup:  # the kernel filters by cgroup; /proc tells who is in it now
            from ..target import cgroup2_root
            root = cgroup2_root()
            members = procfs.cgroup_tgids(os.path.join(root, args.cgroup.lstrip("/"))
                                          if not args.cgroup.startswith(root) else args.cgroup)
        else:
            members = tgids or procfs.target_tgids()
        snapshot = procfs.thread_snapshot(members)
        start_ns = time.monotonic_ns()
        states = ThreadStates(opener, args, start_ns)
        bio = open_spec("biolatency")
        bio.set_globals(targ_per_disk=True)
        bio.programs["biolat_insert"].autoload = bio.programs["biolat_insert_raw"].autoload = False
        sysc = opener("syscount")
        sysc.set_global("measure_latency", bool(pids or args.cgroup))
        if not (pids or args.cgroup):  # host-wide: count at exit only, no entry timestamps
            for n in ("syscount_enter", "syscount_enter_raw"):
                sysc.programs[n].autoload = False
        for spec, name in ((states.spec, "diagnose"), (bio, "biolatency"), (sysc, "syscount")):
            select_hooks(spec, name)
        netns_pid = pids[0] if pids and len(pids) == 1 else "self"
        before = procfs.snapshot_counters(netns_pid)
        ticks0 = self._cpu_ticks(tgids)
        with StopSignal() as stop, contextlib.ExitStack() as stack:
            objs = [stack.enter_context(o) for o in load_all([states.spec, bio, sysc])]
            states.skip_idle_stacks(objs[0])
            for o in objs:
                o.attach_all()
            what = (f"pid {','.join(map(str, pids))}" if pids else
                    f"cgroup {args.cgroup}" if args.cgroup else "the whole host")
            out.banner(f"Diagnosing {what} for {args.duration} s... Hit Ctrl-C to end early.")
            stop.sleep(args.duration)
            for o in objs:
                o.detach()
            end_ns = time.monotonic_ns()
            after = procfs.snapshot_counters(netns_pid)
            ticks1 = self._cpu_ticks(tgids)
            window = (end_ns - start_ns) / 1e9
            acc = states.account(objs[0], end_ns, snapshot, tgids)
            runq = Log2Histogram.from_record(
                objs[0].map("runq_hist", value=hist_dtype)[0], "usecs")
            disk_hists = self._disk_hists(objs[1])
            syscalls = self._syscalls(objs[2])
        counters = counter_deltas(before, after, window)
        hz = os.sysconf("SC_CLK_TCK")
        proc_cpu = ((ticks1[0] - ticks0[0]) / hz, (ticks1[1] - ticks0[1]) / hz)
        breakdown = acc.totals(set(tgids) if tgids else None)
        e = Evidence(window, breakdown, acc, tgids, runq,
                     disk_figures(disk_hists, before, after, window), counters, syscalls,
                     proc_cpu, len(counters["cpu_util_per_cpu"]),
                     host=not (pids or args.cgroup))
        findings, verdict = judge(e)
        threads = len({t for t, s in snapshot.items()})
        return {"target": {"pids": pids, "cgroup": args.cgroup, "host": not (pids or args.cgroup),
                           "comms": {str(t): acc.comms.get(t) for t in (pids or [])},
                           "threads": threads},
                "duration_s": round(window, 3),
                "time_breakdown": {k: round(v, 4) for k, v in breakdown.items()},
                "findings": findings, "verdict": verdict,
                "lost_intervals": acc.lost, "missing_stacks": acc.stack_errors,
                "blocked_stacks": acc.blocked_stacks()}

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
        from ..tools.biolatency import disk_names, key_dtype
        names = disk_names()
        keys, vals = obj.map("hists", key=key_dtype(), value=hist_dtype()).read_all()
        return {names.get(int(k["dev"]), f"dev{int(k['dev'])}"): Log2Histogram.from_record(v, "usecs")
                for k, v in zip(keys, vals)}

    @staticmethod
    def _syscalls(obj):
        from ..syscalls import syscall_name
        from ..tools.syscount import stat_dtype, summarise
        keys, vals = obj.map("data", key="<u4", value=stat_dtype()).read_all()
        return [(syscall_name(k), n, t) for k, n, t, _ in summarise(keys, vals)]
