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
    """{tid: {tgid, comm, state, syscall, futex_op, arg0, wchan, kthread, exec_ns, delay_ns}}
    for every thread of tgids."""
    snap = {}
    for tgid in tgids:
        try:
            tids = os.listdir(f"/proc/{tgid}/task")
        except OSError:
            continue
        for tid in tids:
            t = thread_state(tgid, tid)
            if t is not None:
                snap[int(tid)] = t
    return snap


def thread_state(tgid, tid):
    """What /proc shows of one thread now (see thread_snapshot), or None once it has exited."""
    base = f"/proc/{tgid}/task/{tid}"
    stat = _read(f"{base}/stat")
    if not stat:
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    rest = stat[stat.rindex(")") + 2:].split()
    syscall = (_read(f"{base}/syscall") or "").split()
    sched = (_read(f"{base}/schedstat") or "0 0").split()
    return {
        "tgid": int(tgid), "comm": comm, "state": rest[0],
        "kthread": bool(int(rest[6]) & PF_KTHREAD),
        "syscall": int(syscall[0]) if syscall and syscall[0].lstrip("-").isdigit() else -1,
        "futex_op": int(syscall[2], 16) if len(syscall) > 2 else 0,
        # the first argument, truncated as the kernel side keeps it (a futex word)
        "arg0": int(syscall[1], 16) & 0xFFFFFFFF if len(syscall) > 1 else 0,
        "wchan": (_read(f"{base}/wchan") or "").strip(),
        "exec_ns": int(sched[0]), "delay_ns": int(sched[1]),
    }


def thread_schedstat(tgid, tid):
    """(on-CPU ns, run-queue wait ns) of a thread since it started (schedstat), or None once
    it has exited."""
    text = _read(f"/proc/{tgid}/task/{tid}/schedstat")
    if not text:
        return None
    fields = text.split()
    return int(fields[0]), int(fields[1])


def process_schedstat(tgid):
    """{tid: (on-CPU ns, run-queue wait ns)} of every live thread of a process."""
    try:
        tids = os.listdir(f"/proc/{tgid}/task")
    except OSError:
        return {}
    out = {}
    for tid in tids:
        v = thread_schedstat(tgid, tid)
        if v is not None:
            out[int(tid)] = v
    return out


# --- TCP sockets, for naming the peers a thread waited for ---

def _tcp_table(pid):
    """[(local (addr, port), remote (addr, port), state, inode)] from /proc/PID/net/tcp{,6}:
    the sockets of the network namespace process pid is in."""
    import socket
    rows = []
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in (_read(f"/proc/{pid}/net/{name}") or "").splitlines()[1:]:
            f = line.split()
            if len(f) < 10:
                continue
            rows.append((_endpoint(f[1], family), _endpoint(f[2], family), int(f[3], 16),
                         int(f[9])))
    return rows


def _endpoint(text, family):
    """'0100007F:1F90' -> ('127.0.0.1', 8080): /proc/net/tcp prints each 32-bit word of the
    address in host byte order."""
    import socket
    import struct
    hexaddr, hexport = text.split(":")
    words = [int(hexaddr[i:i + 8], 16) for i in range(0, len(hexaddr), 8)]
    raw = b"".join(struct.pack("=I", w) for w in words)
    addr = socket.inet_ntop(family, raw)
    if addr.startswith("::ffff:") and "." in addr:
        addr = addr[7:]
    return addr, int(hexport, 16)


TCP_LISTEN = 10


def listening_ports(pid="self"):
    """Local ports of TCP sockets in LISTEN."""
    return {local[1] for local, _, state, _ in _tcp_table(pid) if state == TCP_LISTEN}


def tcp_endpoint_owners(wanted):
    """{(pid, (addr, port)): (owner pid, comm)}: for each process pid and endpoint it asked
    about, the process whose TCP socket has that local end in pid's network namespace (who is
    on the other side of a local connection). wanted: {pid: {(addr, port)}}. One pass over
    /proc/*/fd serves them all."""
    inodes = {}  # socket inode -> [(pid, endpoint)]
    for pid, endpoints in wanted.items():
        for local, _, _, inode in _tcp_table(pid):
            if local in endpoints and inode:
                inodes.setdefault(inode, []).append((pid, local))
    if not inodes:
        return {}
    owners = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        for ino in _socket_inodes(d) & inodes.keys():
            for key in inodes.pop(ino):
                owners.setdefault(key, (int(d), comm_of(int(d)) or "?"))
        if not inodes:
            break
    return owners


def _socket_inodes(pid):
    """The inodes of the sockets pid has open."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def _unix_sockets():
    """{inode: (state, name, peer inode)} of the unix sockets of this network namespace, from
    the kernel's sock_diag (what `ss -x` shows): /proc/net/unix has no peers."""
    import socket
    import struct
    NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
    NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR = 1, 0x300, 3, 2
    UDIAG_SHOW_NAME, UDIAG_SHOW_PEER, UNIX_DIAG_NAME, UNIX_DIAG_PEER = 1, 4, 0, 2
    req = struct.pack("=BBHIII8x", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0,
                      UDIAG_SHOW_NAME | UDIAG_SHOW_PEER)
    out = {}
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
            nl.send(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                                NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)
            while True:
                data = nl.recv(1 << 16)
                off = 0
                while off + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, off)
                    if kind in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
                        return out
                    _fam, _type, state, inode = struct.unpack_from("=BBBxI", data, off + 16)
                    name, peer, a = None, 0, off + 16 + 16
                    while a + 4 <= off + length:
                        alen, atype = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if atype == UNIX_DIAG_NAME:
                            name = bytes(data[a + 4:a + alen])
                        elif atype == UNIX_DIAG_PEER:
                            peer = struct.unpack_from("=I", data, a + 4)[0]
                        a += (alen + 3) & ~3
                    out[inode] = (state, name, peer)
                    off += (length + 3) & ~3
    except OSError:
        return out


def unix_served(pairs):
    """Of (waiter, waker) process pairs, those where the waiter serves the waker over a unix
    stream socket: the waiter holds the accepted end of a connection (named as a listening
    socket is: accept() gives it the listener's address) whose other end the waker holds. A
    server woken by its client's request was waiting for work, not on that process."""
    if not pairs:
        return set()
    TCP_ESTABLISHED, TCP_LISTEN = 1, 10
    socks = _unix_sockets()
    listening = {name for state, name, _ in socks.values() if state == TCP_LISTEN and name}
    inodes = {}
    served = set()
    for waiter, waker in pairs:
        for pid in (waiter, waker):
            if pid not in inodes:
                inodes[pid] = _socket_inodes(pid)
        for ino in inodes[waiter]:
            state, name, peer = socks.get(ino, (0, None, 0))
            if state == TCP_ESTABLISHED and name in listening and peer in inodes[waker]:
                served.add((waiter, waker))
                break
    return served


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
            "snmp": snmp(netns_pid), "psi": pressure(), "quota": cpu_quotas()}


# --- CPU quotas (CFS bandwidth control): a throttled cgroup's tasks wait for a CPU that is idle

CPU_V1, CGROUP_V2 = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"


def _cpu_v1():
    """The cpu controller is mounted as cgroup v1 (else quotas are v2's cpu.max)."""
    return os.path.exists(f"{CPU_V1}/cpu.cfs_quota_us")


def cpu_quotas():
    """{cgroup path: (quota_us, period_us, nr_periods, nr_throttled)} of every cgroup with a CPU
    quota (v1 cpu.cfs_quota_us, or v2 cpu.max); paths as /proc/PID/cgroup shows them."""
    v1 = _cpu_v1()
    root = CPU_V1 if v1 else CGROUP_V2
    out = {}
    for d, _dirs, files in os.walk(root):
        if v1:
            quota, period = (_read(f"{d}/cpu.cfs_quota_us") or "-1"), _read(f"{d}/cpu.cfs_period_us")
        elif "cpu.max" in files:
            quota, _, period = (_read(f"{d}/cpu.max") or "max").partition(" ")
        else:
            continue
        if not quota.strip().lstrip("-").isdigit() or int(quota) < 0 or not period:
            continue
        stat = dict(line.split() for line in (_read(f"{d}/cpu.stat") or "").splitlines()
                    if len(line.split()) == 2)
        out[d[len(root):] or "/"] = (int(quota), int(period), int(stat.get("nr_periods", 0)),
                                     int(stat.get("nr_throttled", 0)))
    return out


def cpu_cgroup_of(pid):
    """The path of the cgroup that holds pid's CPU quota, as /proc/PID/cgroup shows it (v1: the
    cpu controller's hierarchy; v2: the unified one), or None."""
    v1 = _cpu_v1()
    for line in (_read(f"/proc/{pid}/cgroup") or "").splitlines():
        _id, controllers, path = line.split(":", 2)
        if (v1 and "cpu" in controllers.split(",")) or (not v1 and controllers == ""):
            return path
    return None


def throttled_processes(pids, throttled):
    """{pid: {cgroup, quota_ms, period_ms, periods, throttled}} for each of pids whose cgroup, or
    the nearest ancestor with a quota (a Kubernetes pod's), was throttled (`throttled`: by cgroup
    path, from counter_deltas)."""
    out = {}
    for pid in pids:
        path = cpu_cgroup_of(pid)
        while path:
            if path in throttled:
                out[pid] = {"cgroup": path, **throttled[path]}
                break
            path = None if path == "/" else (os.path.dirname(path) or "/")
    return out
