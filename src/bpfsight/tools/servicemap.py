"""servicemap: who connects to whom over TCP in a time window, as a graph of edges (client
process -> server address:port and local server process) with connections, bytes, connect
latency, failures, retransmits and resets per edge."""
import os
import struct
import sys
import time

from .. import net
from ..outfile import output_file, write_outputs
from ..report.grouped import comm_of
from ..report.histogram import Log2Histogram
from ..report import servicemap as report
from ..tool import FOREVER, Option, StopSignal, Tool, output_for, positive_int

CONN_ESTABLISHED, CONN_PASSIVE, CONN_CLOSED, CONN_SELECTED = 1, 2, 4, 8  # servicemap.bpf.c
COUNTERS = ("opened", "existing", "failed", "refused", "timed_out", "tx_bytes", "rx_bytes",
            "retransmits", "resets")


def flow_of(family, saddr, sport, daddr, dport):
    """A socket's ends as one hashable key, the same from struct flow and from sock_diag."""
    return int(family), bytes(saddr)[:16], int(sport), bytes(daddr)[:16], int(dport)


class Edge:
    """One client -> server pair: the client a process (pid) or, for a connection seen only
    from its server's end, an address; the server an address:port and its process when local
    and seen accepting."""

    def __init__(self, ip, client_pid, client_addr, server_addr, server_port, server_pid):
        self.ip, self.client_pid, self.client_addr = ip, client_pid, client_addr
        self.server_addr, self.server_port, self.server_pid = server_addr, server_port, server_pid
        self.client_comm = self.server_comm = ""
        self.client_cgid = self.server_cgid = 0
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.latency = Log2Histogram([0] * 32, unit="usecs")
        self.lat_sum_ns = self.lat_max_ns = 0

    @property
    def client(self):
        return f"pid:{self.client_pid}" if self.client_pid else self.client_addr

    @property
    def server(self):
        if self.server_pid:
            return f"pid:{self.server_pid}"
        return report.endpoint(self.server_addr, self.server_port)

    def connected(self, lat_ns):
        self.latency.slots[min(31, max(0, (lat_ns // 1000).bit_length() - 1))] += 1
        self.latency.total += lat_ns // 1000
        self.lat_sum_ns += lat_ns
        self.lat_max_ns = max(self.lat_max_ns, lat_ns)

    def to_dict(self):
        n = self.latency.count
        return {"from": self.client, "to": self.server, "ip": self.ip,
                "server": report.endpoint(self.server_addr, self.server_port),
                "client_pid": self.client_pid, "client_comm": self.client_comm,
                "client_addr": self.client_addr, "server_pid": self.server_pid,
                "server_comm": self.server_comm, **self.counts,
                "connect_avg_us": round(self.lat_sum_ns / n / 1e3, 3) if n else None,
                "connect_max_us": round(self.lat_max_ns / 1e3, 3) if n else None}


class ServiceMap:
    """Edges keyed by (ip, client, server address, port, server process), and what could not
    be recorded."""

    def __init__(self):
        self.edges = {}
        self.lost = 0
        self.seconds = 0.0
        self.cgroups = {}  # cgroup id -> path (report.name_nodes)

    def edge(self, ip, client_pid, client_addr, server_addr, server_port, server_pid,
             client=("", 0), server=("", 0)):
        key = (ip, client_pid, client_addr if not client_pid else "", server_addr, server_port,
               server_pid)
        e = self.edges.get(key)
        if e is None:
            e = self.edges[key] = Edge(ip, client_pid, key[2], server_addr, server_port,
                                       server_pid)
            e.client_comm, e.client_cgid = client
            e.server_comm, e.server_cgid = server
        return e

    def from_key(self, k):
        """The edge of a kernel struct edge_key."""
        family = int(k["family"])
        return self.edge(net.ip_version(family), int(k["client_pid"]),
                         net.addr(family, k["client_addr"]), net.addr(family, k["server_addr"]),
                         int(k["server_port"]), int(k["server_pid"]),
                         (comm_of(k["client_comm"]), int(k["client_cgid"])),
                         (comm_of(k["server_comm"]), int(k["server_cgid"])))

    def nodes(self):
        return report.nodes(self.edges.values(), self.cgroups)

    def to_dict(self):
        return {"seconds": round(self.seconds, 3), "lost": self.lost,
                "nodes": self.nodes(), "edges": [e.to_dict() for e in self.ranked()]}

    def ranked(self, by="bytes"):
        def weight(e):
            c = e.counts
            conns = c["opened"] + c["existing"] + c["failed"]
            volume = c["tx_bytes"] + c["rx_bytes"]
            return (conns, volume) if by == "conns" else (volume, conns)
        return sorted(self.edges.values(), key=weight, reverse=True)


# --- connections open at the start (/proc and sock_diag) ---

def socket_owners(inodes):
    """{socket inode: pid} for the inodes asked about, from one pass over /proc/*/fd."""
    owners, wanted = {}, set(inodes)
    for d in os.listdir("/proc"):
        if not d.isdigit() or not wanted:
            continue
        try:
            fds = os.listdir(f"/proc/{d}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{d}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in wanted:
                owners[int(link[8:-1])] = int(d)
                wanted.discard(int(link[8:-1]))
    return owners


def process_identity(pid):
    """(comm, cgroup id) of a live process, as the kernel side records them."""
    from ..exporter.labels import cgroup_of, comm_now
    from ..target import cgroup2_root
    try:
        cgid = os.stat(os.path.join(cgroup2_root(), cgroup_of(pid).lstrip("/"))).st_ino
    except Exception:
        cgid = 0
    return comm_now(pid) or "?", cgid


def existing_connections(selected):
    """The connections open now in this network namespace, each once: [(client pid, client
    address, server address, port, server pid, ip, the socket measured, whether that is the
    server's end, its bytes so far)]. A socket whose local port listens is a server's end;
    of a local pair, the client's end is the one kept. selected(pid): the -p/-c filter."""
    rows = net.tcp_sockets()
    listening = {(r["family"], r["sport"]) for r in rows if r["state"] == net.LISTEN}
    open_ = [r for r in rows if r["state"] != net.LISTEN]
    by_flow = {flow_of(r["family"], r["saddr"], r["sport"], r["daddr"], r["dport"]): r
               for r in open_}
    owners = socket_owners(r["inode"] for r in open_ if r["inode"])
    found = []
    for f, r in by_flow.items():
        fam = r["family"]
        peer = by_flow.get((fam, f[3], f[4], f[1], f[2]))
        server_end = (fam, r["sport"]) in listening
        if server_end and peer is not None:
            continue  # the client's end of this local connection speaks for it
        pid = owners.get(r["inode"], 0)
        peer_pid = owners.get(peer["inode"], 0) if peer else 0
        client_pid, server_pid = (0, pid) if server_end else (pid, peer_pid)
        if not (client_pid or server_pid) or not (selected(client_pid) or selected(server_pid)):
            continue
        found.append((client_pid, net.addr(fam, f[3] if server_end else f[1]),
                      net.addr(fam, f[1] if server_end else f[3]),
                      r["sport"] if server_end else r["dport"], server_pid,
                      net.ip_version(fam), f, server_end, (r["tx_b"], r["rx_b"])))
    return found


def target_filter(opts):
    """pid -> whether -p/-c selects it (for what user space finds in /proc)."""
    if opts.pid:
        return lambda pid: pid == opts.pid
    if opts.cgroup:
        from ..exporter.labels import cgroup_of
        from ..target import cgroup2_root
        root = cgroup2_root()
        want = os.path.realpath(opts.cgroup if opts.cgroup.startswith(root)
                                else os.path.join(root, opts.cgroup.lstrip("/")))
        return lambda pid: bool(pid) and (
            os.path.join(root, cgroup_of(pid).lstrip("/")) + "/").startswith(want + "/")
    return lambda pid: True


class Servicemap(Tool):
    name = "servicemap"
    summary = "map of TCP connections between processes and services, per edge"
    description = (
        "Map who talks to whom over TCP in a time window: an edge from each client process\n"
        "(pid, comm, cgroup) to each server address:port, naming the server process when it is\n"
        "local, with connections opened, bytes each way, connect latency (SYN_SENT to\n"
        "ESTABLISHED), failed connects (refused, timed out), retransmits and resets.\n\n"
        "A connection is followed through its state changes (sock:inet_sock_set_state) and\n"
        "added to its edge when it closes; those still open at the end are read then (their\n"
        "bytes from the kernel's tcp_info, as `ss -ti`). Bytes are payload, tcp_sock's\n"
        "bytes_acked/bytes_received. The server process is the one whose accept()/accept4()\n"
        "returns the connection (its syscall exit, where the process is known; accepts through\n"
        "io_uring are not seen): a local client's connection is matched to its server's socket\n"
        "by their addresses and ports, so one connection between two local processes is one\n"
        "edge naming both. Connections open at the start (this network namespace's sockets,\n"
        "owners from /proc/PID/fd) are shown as `existing`, with the bytes they move from\n"
        "then on. -p/-c keep edges whose client or server is selected.")

    banner = "Tracing TCP connections... Hit Ctrl-C to end."
    target = True
    options = (
        Option("-n", "--top", type=positive_int("top"), default=20,
               help="edges shown in the table (default 20)"),
        Option("-s", "--sort", choices=("bytes", "conns"), default="bytes",
               help="order edges by bytes moved or by connections (default bytes)"),
        Option("--dot", metavar="FILE", type=output_file(".dot", ".gv"),
               help="write the graph for Graphviz (FILE.dot)"),
        Option("--html", metavar="FILE", type=output_file(".html", ".htm"),
               help="write the graph as one self-contained page (FILE.html)"),
        Option("duration", nargs="?", type=positive_int("duration"), default=FOREVER,
               help="seconds to trace (default: until Ctrl-C)"))

    def run(self, args):
        out = output_for(args)
        spec = self.open(args)
        # here, not in configure: the exporter's collector counts closed connections only
        self._existing = existing_connections(target_filter(args))
        spec.set_global("track_existing", bool(self._existing))
        with StopSignal() as stop, spec.load() as obj:
            self.attach(obj, args)
            started = time.monotonic()
            out.banner(self.banner_for(args))
            stop.sleep(args.duration)
            smap = self.collect(obj, args)
            smap.seconds = time.monotonic() - started
        report.name_nodes(smap)
        self.render([smap], args, out)
        out.record({"tool": self.name, **smap.to_dict()})
        files = []
        if args.dot:
            files.append((args.dot, report.dot(smap)))
        if args.html:
            files.append((args.html, report.html(smap)))
        write_outputs(self.name, files)
        if smap.lost:
            print(f"bpfsight: {smap.lost} connections not recorded (map full)", file=sys.stderr)
        return 0

    def collect(self, obj, opts):
        smap = ServiceMap()
        keys, values = obj.map("edges").read_all()
        for k, v in zip(keys, values):
            e = smap.from_key(k)
            for name, field in (("opened", "opened"), ("failed", "failed"),
                                ("refused", "refused"), ("timed_out", "timed_out"),
                                ("tx_bytes", "tx_b"), ("rx_bytes", "rx_b"),
                                ("retransmits", "retrans"), ("resets", "resets")):
                e.counts[name] += int(v[field])
            e.latency.merge(Log2Histogram.from_record(v["lat_us"], "usecs"))
            e.lat_sum_ns += int(v["lat_sum_ns"])
            e.lat_max_ns = max(e.lat_max_ns, int(v["lat_max_ns"]))
        sockets = {flow_of(r["family"], r["saddr"], r["sport"], r["daddr"], r["dport"]): r
                   for r in net.tcp_sockets(net.OPEN_STATES)}
        self._open_connections(obj, smap, sockets)
        self._existing_connections(obj, smap, sockets)
        smap.lost = int(obj.map("map_full").sum_cpus())
        return smap

    @staticmethod
    def _open_connections(obj, smap, sockets):
        """Connections established in the window and still open: what the kernel would add
        at their CLOSE, with bytes from tcp_info (a socket in another network namespace: 0)."""
        _, values = obj.map("conns").read_all()
        for c in values:
            flags = int(c["flags"])
            if not flags & CONN_ESTABLISHED or not flags & CONN_SELECTED:
                continue  # still connecting, or neither end is selected
            e = smap.from_key(c["key"])
            e.counts["opened"] += 1
            if flags & CONN_CLOSED:
                tx, rx = int(c["tx_b"]), int(c["rx_b"])
            else:
                f = c["flow"]
                r = sockets.get(flow_of(f["family"], f["saddr"], f["sport"], f["daddr"],
                                        f["dport"]), {"tx_b": 0, "rx_b": 0})
                tx, rx = (r["rx_b"], r["tx_b"]) if flags & CONN_PASSIVE else (r["tx_b"], r["rx_b"])
            e.counts["tx_bytes"] += tx
            e.counts["rx_bytes"] += rx
            e.counts["retransmits"] += int(c["retrans"])
            e.counts["resets"] += int(c["resets"])
            if not flags & CONN_PASSIVE:
                e.connected(int(c["lat_ns"]))

    def _existing_connections(self, obj, smap, sockets):
        """Connections open at the start, with the bytes they moved since: read again if
        still open, else as the kernel found them at their CLOSE."""
        closed = obj.map("closed_existing")
        for (client_pid, client_addr, server_addr, port, server_pid, ip, flow, server_end,
             (tx0, rx0)) in self._existing:
            now = sockets.get(flow)
            if now is not None:
                tx, rx = now["tx_b"], now["rx_b"]
            else:
                fam, saddr, sport, daddr, dport = flow  # as struct flow (flow.h)
                found = closed.get(struct.pack("=16s16sHHHH", saddr, daddr, sport, dport,
                                               fam, 0))
                tx, rx = (int(found["tx_b"]), int(found["rx_b"])) if found is not None \
                    else (tx0, rx0)
            tx, rx = max(0, tx - tx0), max(0, rx - rx0)
            if server_end:
                tx, rx = rx, tx
            e = smap.edge(ip, client_pid, client_addr, server_addr, port, server_pid,
                          process_identity(client_pid) if client_pid else ("", 0),
                          process_identity(server_pid) if server_pid else ("", 0))
            e.counts["existing"] += 1
            e.counts["tx_bytes"] += tx
            e.counts["rx_bytes"] += rx

    def render(self, records, opts, out):
        for smap in records:
            for line in report.table(smap, opts.top, opts.sort):
                out.text(line)
