"""/proc readers for diagnose: thread snapshots (to classify threads already blocked when the
window opened) and the host counters of the USE method. Each returns plain numbers."""
import os

from ..cpustat import cpu_times

PF_KTHREAD = 0x00200000


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def target_tgids(pids=None):
    """The processes diagnose looks at: the given ones, or every process on the host."""
    if pids:
        return [p for p in pids if os.path.isdir(f"/proc/{p}")]
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def cgroup_tgids(path):
    """Processes in a cgroup directory and its descendants (cgroup.procs at every level)."""
    tgids = set()
    for root, _dirs, files in os.walk(path):
        text = _read(os.path.join(root, "cgroup.procs")) if "cgroup.procs" in files else None
        tgids.update(int(x) for x in (text or "").split())
    return sorted(tgids)


def thread_snapshot(tgids):
    """{tid: {tgid, comm, state, syscall, futex_op, wchan, kthread}} for every thread of tgids."""
    snap = {}
    for tgid in tgids:
        try:
            tids = os.listdir(f"/proc/{tgid}/task")
        except OSError:
            continue
        for tid in tids:
            base = f"/proc/{tgid}/task/{tid}"
            stat = _read(f"{base}/stat")
            if not stat:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            rest = stat[stat.rindex(")") + 2:].split()
            syscall = (_read(f"{base}/syscall") or "").split()
            snap[int(tid)] = {
                "tgid": tgid, "comm": comm, "state": rest[0],
                "kthread": bool(int(rest[6]) & PF_KTHREAD),
                "syscall": int(syscall[0]) if syscall and syscall[0].lstrip("-").isdigit() else -1,
                "futex_op": int(syscall[2], 16) if len(syscall) > 2 else 0,
                "wchan": (_read(f"{base}/wchan") or "").strip(),
            }
    return snap


def comm_of(tgid):
    text = _read(f"/proc/{tgid}/comm")
    return text.strip() if text else None


def is_kthread(tgid):
    stat = _read(f"/proc/{tgid}/stat")
    if not stat:
        return False
    return bool(int(stat[stat.rindex(")") + 2:].split()[6]) & PF_KTHREAD)


# --- host counters (deltas make the USE figures) ---

def vmstat():
    return {k: int(v) for k, v in (line.split() for line in (_read("/proc/vmstat") or "").splitlines())}


def diskstats():
    """{name: [fields 4..]} (reads, merged, sectors, ms, writes, ..., io_ticks, weighted)."""
    out = {}
    for line in (_read("/proc/diskstats") or "").splitlines():
        f = line.split()
        out[f[2]] = [int(x) for x in f[3:]]
    return out


def _proto_table(path):
    table, lines = {}, (_read(path) or "").splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        proto = head.split(":")[0]
        table[proto] = dict(zip(head.split()[1:], (int(v) for v in vals.split()[1:])))
    return table


def snmp(pid="self"):
    """TCP/IP counters of the network namespace of process pid (the target's own namespace:
    a container's retransmits do not show in the host's /proc/net/snmp)."""
    t = _proto_table(f"/proc/{pid}/net/snmp")
    t.update(_proto_table(f"/proc/{pid}/net/netstat"))
    return t


def pressure():
    """{'cpu'|'memory'|'io': {'some': total_us, 'full': total_us}} (PSI), if the kernel has it."""
    out = {}
    for res in ("cpu", "memory", "io"):
        text = _read(f"/proc/pressure/{res}")
        if not text:
            continue
        out[res] = {line.split()[0]: int(line.split("total=")[1]) for line in text.splitlines()}
    return out


def proc_cpu_ticks(tgid):
    """(utime, stime) clock ticks of a process (all threads)."""
    stat = _read(f"/proc/{tgid}/stat")
    if not stat:
        return 0, 0
    rest = stat[stat.rindex(")") + 2:].split()
    return int(rest[11]), int(rest[12])


def snapshot_counters(netns_pid="self"):
    return {"cpu": cpu_times(), "vmstat": vmstat(), "disk": diskstats(),
            "snmp": snmp(netns_pid), "psi": pressure()}
