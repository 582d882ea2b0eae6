"""One collector per tool: the tool's own BPF object, switched to aggregate in the kernel, and
the tool's own decode helpers, read when Prometheus scrapes (never per event).

A collector names the tool's options for the in-kernel aggregation it needs (`biolatency -D
-F`, `tcpretrans -c`, ...): the tool's own definition configures the object from them. The
per-process collectors also switch the object to count per comm and cgroup instead of per pid
(`group_map`), so short-lived processes add to existing keys. `families()` reads the maps and yields metric families (metrics.Family). Latency histograms
become cumulative Prometheus histograms: log2 slot i of a tool's histogram holds whole units up
to 2^(i+1) - 1, i.e. real values below 2^(i+1) units, which is its `le` bound.
"""
import time

from ..report.histogram import HIST_SLOTS
from ..tool import event_ring
from . import metrics
from .labels import PROCESS_LABELS
from .series import CappedSeries

US = 1e-6
NS = 1e-9
HIST_SHAPE = HIST_SLOTS + 1  # the slots, then the exact total
GROUP_ENTRIES = 4096  # (comm, cgroup, kind) keys of a per-process map: names x cgroups, not pids


class MapReads:
    """Reads a kernel map for a CappedSeries without deleting anything, except when a map of
    keys that come and go (pids, flows) is found past half full: then it is read again and
    drained (lookup-and-delete, atomic per key), so new keys still find room. changed() tells
    whether the map holds what the previous read() decoded, reading it once for both."""

    def __init__(self, bpf_map, drains=True):
        self.map = bpf_map
        self.drains = drains
        self.drains_done = 0
        self._peeked = None   # read by changed(), for the next read()
        self._decoded = None  # what the previous read() decoded, while the map kept it

    def changed(self):
        self._peeked = self.map.read_raw()
        return self._peeked != self._decoded

    def read(self):
        """(keys, values, drained)."""
        raw, self._peeked = self._peeked or self.map.read_raw(), None
        keys, values = self.map.decode_all(raw)
        if not self.drains or len(keys) <= self.map.max_entries // 2:
            self._decoded = raw
            return keys, values, False
        self.drains_done += 1
        self._decoded = None
        keys, values = self.map.read_all(delete=True)  # what the first read saw, and since
        return keys, values, True


class Collector:
    """Base: a subclass names its tool and the options it runs the tool with (the tool's own
    definition configures the object), reads its maps in attached() and yields metric
    families from families()."""
    name = ""
    help = ""
    tool_options = {}  # keyword options of the tool, as `bpfsight.attach(name, **options)` takes
    default = True     # started without --collectors
    # per-process collectors: the tool's map keyed by comm and cgroup (bpf/include/group.bpf.h),
    # and the per-pid map the tool itself uses, left unused (one slot)
    group_map = pid_map = None
    # collectors that read the tool's ring buffer: its size here. A ring is mapped whole into
    # the reader, so the tools' 1 MiB each would be 1 MiB of the daemon's RSS per collector
    ring_bytes = None
    # families() may reuse the previous scrape's when the maps did not change: not where a
    # figure moves with time alone
    reuse_unchanged = True

    def __init__(self, ctx):
        self.ctx = ctx  # max_series, idle_s, process_labels, cgroups, disks
        self.obj = None
        self.reads = []  # MapReads, for the self-metrics
        self._last = None  # the previous scrape's families

    def start(self, stack):
        """Open, configure, load and attach the tool's object; everything closes with stack.
        No -p/-c: the exporter's own syscalls are still left out (self_tgid)."""
        from ..tool import Options
        from ..tools import load, lookup
        tool = self.tool = load(lookup(self.name))
        opts = Options(tool, **self.tool_options)
        spec = stack.enter_context(tool.open(opts))
        if self.group_map:
            spec.set_globals(targ_by_group=True)
            spec.maps[self.group_map].max_entries = GROUP_ENTRIES
            spec.maps[self.pid_map].max_entries = 1
        if self.ring_bytes:
            spec.maps["events"].max_entries = self.ring_bytes
        self.obj = stack.enter_context(spec.load())
        tool.attach(self.obj, opts)
        self.attached(self.obj, stack)
        return self

    # a subclass defines attached(obj, stack): type its maps, open its ring buffer;
    # and fresh_families(): read them and yield metric families

    def families(self):
        """This scrape's families; the previous scrape's when every map it reads holds what
        it held then (an idle disk, no retransmits): nothing to decode or credit. Collectors
        that also read a ring buffer always read."""
        if (self.reuse_unchanged and self.reads and self.ring_bytes is None
                and self._last is not None
                and not any([r.changed() for r in self.reads])):
            return self._last
        self._last = list(self.fresh_families())
        return self._last

    # --- helpers ---

    def series(self, labels, shape, weight=None):
        return CappedSeries(len(labels), shape, self.ctx.max_series, self.ctx.idle_s, weight)

    def reader(self, name, drains=True):
        """A map of the tool's object, typed by its BTF, read at each scrape."""
        r = MapReads(self.obj.map(name), drains)
        self.reads.append(r)
        return r

    def process(self, pid_and_comm):
        pid, comm = pid_and_comm
        return self.ctx.process_labels(int(pid), comm)

    def group(self, key_and_pid):
        """PROCESS_LABELS of a group_key (comm, cgroup id) and the last pid seen in it."""
        from ..report.grouped import comm_of
        key, pid = key_and_pid
        return (comm_of(key["comm"]),) + self.ctx.cgroups(int(key["cgroup_id"]), int(pid))


def hist_weight(vec):
    return int(vec[:HIST_SLOTS].sum())  # rank histograms by events, not by summed latency


def hist_vector(rec):
    """A decoded `struct hist` as one vector: the slots, then the total."""
    import numpy as np
    return np.append(rec["slots"], rec["total"])


def part(series, index):
    """(labels, vector[index]) of each series: several families fed by one CappedSeries keep
    the same label sets."""
    return [(labels, vec[index]) for labels, vec in series.items()]


def histogram(name, doc, label_names, items, unit_s, max_slot):
    """A cumulative Prometheus histogram from (labels, hist vector) items: buckets le
    2^(i+1) units for slots 0..max_slot-1, then +Inf; _sum from the exact total. A fixed
    bucket set per metric keeps recording rules and heat maps stable."""
    import numpy as np
    fam = metrics.histogram(name, doc, label_names)
    bounds = [metrics.go_float((1 << (i + 1)) * unit_s) for i in range(max_slot)]
    for labels, vec in items:
        cum = np.cumsum(vec[:HIST_SLOTS])
        buckets = [(b, int(cum[i])) for i, b in enumerate(bounds)] + [("+Inf", int(cum[-1]))]
        fam.add_histogram(labels, buckets, float(vec[HIST_SLOTS]) * unit_s)
    return fam


def counter(name, doc, label_names, items, dims=("",), dim_label=None, scale=1):
    """A counter family from (labels, vector) items whose vectors have one element per dims
    entry (named by dim_label); only dimensions that have counted are exported."""
    names = list(label_names) + ([dim_label] if dim_label else [])
    fam = metrics.counter(name, doc, names)
    for labels, vec in items:
        for i, dim in enumerate(dims):
            if vec[i]:
                fam.add(list(labels) + ([dim] if dim_label else []), float(vec[i]) * scale)
    return fam


# --- block I/O ---

class BlockLatency(Collector):
    """biolatency -D -F: issue-to-completion latency per disk and operation."""
    name = "biolatency"
    help = "block I/O latency histograms per disk and op"
    labels = ("disk", "op")

    tool_options = {"disk": True, "flag": True}

    def attached(self, obj, stack):
        self.hists = self.reader("hists", drains=False)
        self.latency = self.series(self.labels, HIST_SHAPE, hist_weight)

    def fresh_families(self):
        keys, values, drained = self.hists.read()
        self.latency.observe(((k.tobytes(), hist_vector(v), k) for k, v in zip(keys, values)),
                             self._label, drained)
        yield histogram("bpfsight_block_io_latency_seconds",
                        "Block I/O latency, issue to completion (biolatency -D -F).",
                        self.labels, self.latency.items(), US, max_slot=25)  # to 33.5 s

    def _label(self, key):
        from ..tools.biolatency import flag_names
        op = flag_names(int(key["cmd_flags"])).split("-", 1)[0]  # the op, without its flags
        return self.ctx.disks(int(key["dev"])), op


class BlockIOSize(Collector):
    """bitesize: block I/O request sizes per process name (opt-in)."""
    name = "bitesize"
    help = "block I/O request size histograms per process name (opt-in)"
    default = False  # one more object on the block hooks: asked for by name

    def attached(self, obj, stack):
        self.hists = self.reader("hists")
        self.sizes = self.series(("comm",), HIST_SHAPE, hist_weight)

    def fresh_families(self):
        from ..report.grouped import comm_of
        keys, values, drained = self.hists.read()
        self.sizes.observe(((k.tobytes(), hist_vector(v), k) for k, v in zip(keys, values)),
                           lambda k: (comm_of(k["comm"]),), drained)
        yield histogram("bpfsight_block_io_size_bytes", "Block I/O request sizes, per process "
                        "name (bitesize).", ("comm",), self.sizes.items(), 1024, max_slot=16)


class BlockIO(Collector):
    """biostat: requests, bytes, busy time and in-flight integral per disk: the figures of
    /proc/diskstats, measured from block-layer events."""
    name = "biostat"
    help = "block I/O requests, bytes, busy and queue time per disk and op"
    reuse_unchanged = False  # busy and queue time grow while a request is in flight

    def attached(self, obj, stack):
        from ..tools.biostat import GROUPS
        self.groups = GROUPS
        self.stats = self.reader("stats", drains=False)
        self.disk = self.series(("disk",), 2 * len(GROUPS) + 2)

    def fresh_families(self):
        from ..tools.biostat import Reading
        keys, values, drained = self.stats.read()
        now = time.monotonic_ns()  # bpf_ktime_get_ns's clock: integrals extended to now

        def vector(rec):
            r = Reading(rec, now)
            return list(r.ios) + list(r.bytes) + [r.busy, r.queue]

        self.disk.observe(((int(k), vector(v), int(k)) for k, v in zip(keys, values)),
                          lambda dev: (self.ctx.disks(dev),), drained)
        n = len(self.groups)
        yield counter("bpfsight_block_io_requests_total",
                      "Block I/O requests completed, per disk and op (biostat).",
                      ("disk",), part(self.disk, slice(0, n)), self.groups, "op")
        yield counter("bpfsight_block_io_bytes_total",
                      "Block I/O bytes completed, per disk and op (biostat).",
                      ("disk",), part(self.disk, slice(n, 2 * n)), self.groups, "op")
        yield counter("bpfsight_block_io_busy_seconds_total",
                      "Time with at least one request in flight, per disk (biostat; "
                      "io_ticks of /proc/diskstats).", ("disk",),
                      part(self.disk, slice(2 * n, 2 * n + 1)), scale=NS)
        yield counter("bpfsight_block_io_queue_seconds_total",
                      "Requests in flight integrated over time, per disk (biostat; weighted "
                      "time in queue of /proc/diskstats).", ("disk",),
                      part(self.disk, slice(2 * n + 1, 2 * n + 2)), scale=NS)


# --- scheduler ---

class RunQueue(Collector):
    """runqlat, per process name and cgroup (as -P, keyed by what is exported)."""
    name = "runqlat"
    help = "run-queue latency histograms per process"
    group_map, pid_map = "group_hists", "hists"

    def attached(self, obj, stack):
        self.hists = self.reader("group_hists")
        self.latency = self.series(PROCESS_LABELS, HIST_SHAPE, hist_weight)

    def fresh_families(self):
        keys, values, drained = self.hists.read()
        self.latency.observe(((k.tobytes(), hist_vector(v["h"]), (k, v["pid"]))
                              for k, v in zip(keys, values)), self.group, drained)
        yield histogram("bpfsight_runqueue_latency_seconds",
                        "Time runnable tasks waited for a CPU, per process (runqlat).",
                        PROCESS_LABELS, self.latency.items(), US, max_slot=20)  # to 1.05 s


OFFCPU_CAUSES = {"R": "preempted", "S": "sleeping", "D": "uninterruptible", "I": "idle",
                 "T": "stopped", "t": "stopped"}
CAUSES = ("preempted", "sleeping", "uninterruptible", "idle", "stopped", "other")


class OffCpu(Collector):
    """offcputime without stacks: time user threads spent switched out, per process and the
    state they blocked in (preempted, sleeping, uninterruptible: disk or lock, ...)."""
    name = "offcputime"
    help = "off-CPU time of user threads per process by cause (thread state)"

    tool_options = {"user_threads_only": True, "no_stacks": True}
    group_map, pid_map = "group_counts", "counts"

    def attached(self, obj, stack):
        self.counts = self.reader("group_counts")
        self.offcpu = self.series(PROCESS_LABELS, len(CAUSES))

    def fresh_families(self):
        import numpy as np
        from ..tools.offcputime import state_name
        keys, values, drained = self.counts.read()

        def vector(key, val):
            v = np.zeros(len(CAUSES), dtype=np.int64)
            cause = OFFCPU_CAUSES.get(state_name(int(key["kind"])), "other")
            v[CAUSES.index(cause)] = int(val["total_ns"])
            return v

        self.offcpu.observe(((k.tobytes(), vector(k, v), (k, v["pid"]))
                             for k, v in zip(keys, values)), self.group, drained)
        yield counter("bpfsight_offcpu_seconds_total",
                      "Time user threads spent off CPU, per process and cause: the state they "
                      "blocked in (offcputime, no stacks).", PROCESS_LABELS,
                      self.offcpu.items(), CAUSES, "cause", scale=NS)


# --- syscalls, memory ---

class Syscalls(Collector):
    """syscount: syscalls by name (bpfsight's own are not counted)."""
    name = "syscount"
    help = "syscalls by name"


    def attached(self, obj, stack):
        self.data = self.reader("data", drains=False)
        self.calls = self.series(("syscall",), 1)

    def fresh_families(self):
        from ..syscalls import syscall_name
        from ..tools.syscount import summarise
        keys, values, drained = self.data.read()
        self.calls.observe(((nr, [n], nr) for nr, n, _, _ in summarise(keys, values)),
                           lambda nr: (syscall_name(nr),), drained)
        yield counter("bpfsight_syscalls_total", "Syscalls by name (syscount).", ("syscall",),
                      self.calls.items())


class PageFaults(Collector):
    """pagefaults: minor and major faults per process."""
    name = "pagefaults"
    help = "minor and major page faults per process"

    tool_options = {"no_split": True}  # minor and major only
    group_map, pid_map = "group_faults", "faults"

    def attached(self, obj, stack):
        self.faults = self.reader("group_faults")
        self.series_ = self.series(PROCESS_LABELS, 2)

    def fresh_families(self):
        import numpy as np
        keys, values, drained = self.faults.read()  # per CPU: summed
        counts = np.stack([values["minor"].sum(axis=1), values["major"].sum(axis=1)], axis=1)
        pids = values["pid"].max(axis=1)
        self.series_.observe(((k.tobytes(), n, (k, pid))
                              for k, n, pid in zip(keys, counts, pids)), self.group, drained)
        yield counter("bpfsight_page_faults_total",
                      "Page faults per process and type (pagefaults: the software events "
                      "page-faults-min/-maj).", PROCESS_LABELS, self.series_.items(),
                      ("minor", "major"), "type")


class OomKills(Collector):
    """oomkill: OOM-killer victims. Kills are rare: their records wait in the tool's ring
    buffer until the next scrape reads them."""
    name = "oomkill"
    help = "OOM kills per victim process"
    ring_bytes = 64 * 1024  # ~500 kills between two scrapes; more are counted as dropped

    def attached(self, obj, stack):
        self.ring = event_ring(obj)
        stack.callback(self.ring.close)
        self.kills = self.series(PROCESS_LABELS, 1)

    def fresh_families(self):
        from ..tools.oomkill import decode
        for e in map(decode, self.ring.read_array(self.obj.record_dtype())):
            self.kills.add(self.process((e["kpid"], e["kcomm"])), [1])
        yield counter("bpfsight_oom_kills_total", "Processes killed by the OOM killer, by "
                      "victim (oomkill; the victim's cgroup is known only while it still "
                      "exists at the scrape).", PROCESS_LABELS, self.kills.items())


class Locks(Collector):
    """lockstat -t: time threads waited for kernel locks and in futex waits (user mutexes,
    approx: also condition variables and joins), per process."""
    name = "lockstat"
    help = "lock contention per process: kernel locks; futex waits (approx: condvars too)"
    kinds = ("kernel", "futex")

    tool_options = {"threads": True}  # no stacks taken
    group_map, pid_map = "group_waits", "waits"
    ring_bytes = 64 * 1024  # announcements of processes, not used here

    def attached(self, obj, stack):
        # the ring announces processes for stack symbolisation: unused here, emptied each scrape
        self.ring = event_ring(obj)
        stack.callback(self.ring.close)
        self.waits = self.reader("group_waits")
        self.locks = self.series(PROCESS_LABELS, 2 * len(self.kinds))

    def fresh_families(self):
        import numpy as np
        from ..tools.lockstat import KINDS
        self.ring.read()
        keys, values, drained = self.waits.read()

        def vector(key, val):
            v = np.zeros(2 * len(self.kinds), dtype=np.int64)
            i = self.kinds.index(KINDS[int(key["kind"])])
            v[i], v[len(self.kinds) + i] = int(val["total_ns"]), int(val["count"])
            return v

        self.locks.observe(((k.tobytes(), vector(k, v), (k, v["pid"]))
                            for k, v in zip(keys, values)), self.group, drained)
        n = len(self.kinds)
        yield counter("bpfsight_lock_wait_seconds_total",
                      "Time threads waited for contended kernel locks and in futex waits, "
                      "per process (lockstat -t; futex: approx, includes condition variables).",
                      PROCESS_LABELS, part(self.locks, slice(0, n)), self.kinds, "kind", NS)
        yield counter("bpfsight_lock_waits_total",
                      "Contended kernel lock acquisitions and futex waits, per process "
                      "(lockstat -t).", PROCESS_LABELS, part(self.locks, slice(n, 2 * n)),
                      self.kinds, "kind")


# --- network ---

class TcpRetransmits(Collector):
    """tcpretrans -c: retransmits counted per flow in the kernel, exported per remote
    address."""
    name = "tcpretrans"
    help = "TCP retransmits per remote address"
    labels = ("ip", "remote_addr")

    tool_options = {"count": True}

    def attached(self, obj, stack):
        self.counts = self.reader("counts")
        self.retrans = self.series(self.labels, 1)

    def fresh_families(self):
        keys, values, drained = self.counts.read()
        self.retrans.observe(((k.tobytes(), [int(v)], k) for k, v in zip(keys, values)),
                             self._label, drained)
        yield counter("bpfsight_tcp_retransmits_total",
                      "TCP segments retransmitted (and SYN-ACK retransmits), per remote "
                      "address (tcpretrans -c).", self.labels, self.retrans.items())

    @staticmethod
    def _label(key):
        from ..net import flow_dict
        f = flow_dict(key)
        return str(f["ip"]), f["raddr"]


class TcpDrops(Collector):
    """tcpdrop: TCP packets dropped by the kernel, counted per drop reason in the kernel."""
    name = "tcpdrop"
    help = "TCP packet drops by kernel drop reason"

    tool_options = {"count": True}

    def attached(self, obj, stack):
        from ..bpf.btfenum import short_names
        self.reasons = short_names("skb_drop_reason", "SKB_DROP_REASON_")
        self.drops = self.series(("reason",), 1)

    def fresh_families(self):
        from ..tools.tcpdrop import reason_counts
        self.drops.observe(((nr, [n], nr) for nr, n in reason_counts(self.obj)),
                           lambda nr: (self.reasons.get(nr, str(nr)),))
        yield counter("bpfsight_tcp_drops_total",
                      "TCP packets dropped by the kernel, by drop reason (tcpdrop; drops "
                      "without a reason are not counted).", ("reason",), self.drops.items())


class TcpServiceMap(Collector):
    """servicemap: TCP connections per edge (client process -> server address:port and its
    local process), counted in the kernel when each connection closes or fails."""
    name = "servicemap"
    help = "TCP connections, bytes, failures and connect latency per client -> server edge"
    labels = ("client", "client_container", "server_addr", "server_port", "server")
    results = ("established", "refused", "timed_out", "failed_other")
    # vector: the results, bytes to server and to client, retransmits, resets, latency hist
    BYTES, EVENTS, HIST = slice(4, 6), slice(6, 8), slice(8, 8 + HIST_SHAPE)

    def attached(self, obj, stack):
        self.edges = self.reader("edges")
        self.series_ = self.series(self.labels, 8 + HIST_SHAPE,
                                   lambda d: int(d[:4].sum() + d[4:6].sum()))

    def fresh_families(self):
        import numpy as np
        keys, values, drained = self.edges.read()

        def vector(v):
            failed_other = int(v["failed"]) - int(v["refused"]) - int(v["timed_out"])
            return np.concatenate(([v["opened"], v["refused"], v["timed_out"], failed_other,
                                    v["tx_b"], v["rx_b"], v["retrans"], v["resets"]],
                                   hist_vector(v["lat_us"])))

        self.series_.observe(((k.tobytes(), vector(v), k) for k, v in zip(keys, values)),
                             self._label, drained)
        items = self.series_.items()
        yield counter("bpfsight_tcp_connections_total",
                      "TCP connections per client -> server edge by result, counted when they "
                      "close or fail (servicemap).", self.labels, part(self.series_, slice(0, 4)),
                      self.results, "result")
        yield counter("bpfsight_tcp_connection_bytes_total",
                      "Payload bytes of closed TCP connections per edge and direction "
                      "(servicemap; tcp_sock bytes_acked/bytes_received).", self.labels,
                      part(self.series_, self.BYTES), ("to_server", "to_client"), "direction")
        yield counter("bpfsight_tcp_connection_events_total",
                      "Retransmits and resets of closed TCP connections per edge (servicemap).",
                      self.labels, part(self.series_, self.EVENTS), ("retransmit", "reset"),
                      "event")
        yield histogram("bpfsight_tcp_connect_latency_seconds",
                        "TCP connect latency, SYN_SENT to ESTABLISHED, per edge (servicemap).",
                        self.labels, [(lab, vec[self.HIST]) for lab, vec in items], US,
                        max_slot=22)  # to 8.4 s

    def _label(self, k):
        from ..net import addr
        from ..report.grouped import comm_of
        family, client_pid = int(k["family"]), int(k["client_pid"])
        if client_pid:
            client, _, container, _ = self.process((client_pid, comm_of(k["client_comm"])))
        else:
            client, container = addr(family, k["client_addr"]), ""
        return (client, container, addr(family, k["server_addr"]), str(int(k["server_port"])),
                comm_of(k["server_comm"]))


class HttpRequests(Collector):
    """httplat: HTTP/1.x request latency per process name, side, method, route and status
    (opt-in: each request is parsed in user space, ~3 us of the exporter's CPU per message).
    The records are read from the ring by a thread every 0.1 s, not at the scrape, so a busy
    server between two scrapes cannot fill the ring."""
    name = "httplat"
    help = "HTTP/1.x request latency per comm, role, method, route and status (opt-in)"
    default = False
    labels = ("comm", "role", "method", "route", "status")

    def attached(self, obj, stack):
        import threading
        from ..tools.httplat import Pairing
        self.ring = event_ring(obj)
        stack.callback(self.ring.close)
        self.pairing = Pairing(self.ctx.max_series)  # past the cap, routes are "(other)"
        self.latency = self.series(self.labels, HIST_SHAPE, hist_weight)
        self.done, self.lock, self.stopping = [], threading.Lock(), threading.Event()
        reader = threading.Thread(target=self._read, name="httplat-ring", daemon=True)
        reader.start()
        stack.callback(reader.join)  # runs before the ring closes (callbacks run last first)
        stack.callback(self.stopping.set)

    def _read(self):
        dtype = self.obj.record_dtype()
        while not self.stopping.is_set():
            self.ring.poll(0.1)
            done = self.pairing.feed_batch(self.ring.read_array(dtype))
            if done:
                with self.lock:
                    self.done += done

    def fresh_families(self):
        from ..tools.httplat import summarise
        with self.lock:
            done, self.done = self.done, []
        for row in summarise(done):
            h = row["histogram"]
            self.latency.add(tuple(str(row[k]) for k in self.labels), h.slots + [h.total])
        yield histogram("bpfsight_http_request_duration_seconds",
                        "HTTP/1.x request latency: a server's from reading the request to "
                        "writing its status line, a client's from writing the request to "
                        "reading the status line (httplat).", self.labels,
                        self.latency.items(), US, max_slot=24)  # to 33.5 s


class SecurityAlerts(Collector):
    """watch: alerts of the default rules by rule, severity and kind, and those over a rule's
    rate (opt-in: a policy is a choice). Alerts are rare: they wait in the ring for the
    scrape; execs that match no rule stay in the kernel (no ancestry is kept)."""
    name = "watch"
    help = "security alerts of watch's default rules, by rule and severity (opt-in)"
    default = False
    labels = ("rule", "severity", "kind")
    tool_options = {"no_ancestry": True}

    def attached(self, obj, stack):
        self.ring = event_ring(obj)
        stack.callback(self.ring.close)
        self.alerts = self.series(self.labels, 1)
        self.over = self.series(("rule",), 1)

    def fresh_families(self):
        from ..tools.watch import KIND_NAMES
        for e in self.ring.read_array(self.obj.record_dtype()):
            kind = KIND_NAMES.get(int(e["kind"]))
            for rule in self.tool.rules_of(int(e["rules"])) if kind else ():
                self.alerts.add((rule.name, rule.severity, kind), [1])
        self.over.observe(((name, [n], name) for name, n in
                           self.tool.suppressed(self.obj).items()), lambda name: (name,))
        yield counter("bpfsight_security_alerts_total", "Alerts of watch's rules, by rule, "
                      "severity and kind of event (matched in the kernel).", self.labels,
                      self.alerts.items())
        yield counter("bpfsight_security_alerts_suppressed_total", "Alerts over their rule's "
                      "rate, counted and not sent (watch).", ("rule",), self.over.items())


class InterfacePackets(Collector):
    """pktstat: packets and bytes per interface, direction, protocol and port, counted by tc
    programs on tcx links of the interfaces named with --interfaces (opt-in): one object for
    all of them, its counts keyed by interface index."""
    name = "pktstat"
    help = "packets and bytes per interface, direction, protocol and port (--interfaces)"
    default = False  # nothing to count on until interfaces are named
    labels = ("interface", "direction", "protocol", "port")

    def start(self, stack):
        from .. import netns
        from ..errors import UsageError
        from ..tool import Options
        from ..tools import load, lookup
        from ..tools.pktstat import attach_counting
        if not self.ctx.interfaces:
            raise UsageError("the pktstat collector counts on the interfaces named with "
                             "--interfaces (e.g. --interfaces eth0,NETNS/veth0)")
        tool = load(lookup(self.name))
        self.names = {}  # ifindex -> the interface as named
        for ns, iface in self.ctx.interfaces:
            with netns.entered(ns):
                index = netns.interface_index(iface)
            if index in self.names:
                raise UsageError(f"interfaces {self.names[index]} and {iface} have the same "
                                 "index (in two namespaces): one exporter per namespace")
            self.names[index] = f"{ns}/{iface}" if ns else iface
        ns, iface = self.ctx.interfaces[0]
        spec = stack.enter_context(tool.open(Options(tool, interface=iface, netns=ns)))
        self.obj = stack.enter_context(spec.load())
        for (ns, iface), index in zip(self.ctx.interfaces, self.names):
            attach_counting(self.obj, index, ns)
        self.counts = self.reader("counts")
        self.packets = self.series(self.labels, 2, lambda d: int(d[1]))  # ranked by bytes
        return self

    def fresh_families(self):
        from ..tools.pktstat import interface_rows
        keys, values, drained = self.counts.read()
        rows = interface_rows(keys, values)
        self.packets.observe((((index, d, proto, port), [n, b], (index, d, proto, port))
                              for index, d, proto, port, n, b in rows),
                             self._label, drained)
        yield counter("bpfsight_interface_packets_total",
                      "Packets through an interface by direction, protocol and port: the lower "
                      "of the two TCP/UDP ports, the service's as a rule (pktstat).",
                      self.labels, part(self.packets, slice(0, 1)))
        yield counter("bpfsight_interface_bytes_total",
                      "Bytes through an interface (frames, link-layer header included) by "
                      "direction, protocol and port (pktstat).", self.labels,
                      part(self.packets, slice(1, 2)))

    def _label(self, key):
        index, direction, proto, port = key
        return self.names.get(index, str(index)), direction, proto, str(port) if port else ""


COLLECTORS = {c.name: c for c in (BlockLatency, BlockIO, BlockIOSize, RunQueue, OffCpu, Syscalls,
                                  PageFaults, OomKills, Locks, TcpRetransmits, TcpDrops,
                                  TcpServiceMap, HttpRequests, SecurityAlerts,
                                  InterfacePackets)}
