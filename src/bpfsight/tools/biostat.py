"""biostat: iostat's per-disk figures (IOPS, throughput, queue size, utilisation, await)
computed from block-layer events instead of /proc/diskstats."""
import time

from ..blockio import DiskNames, disk_dev
from ..tool import TIMESTAMP, Option, Tool

GROUPS = ("read", "write", "discard", "flush")  # bpf/include/biostat.h, /proc/diskstats order
U64 = 1 << 64


class Reading:
    """One disk's cumulative counters at time now_ns, with the in-flight integrals extended
    from the kernel's last update to now (they only advance when the in-flight count moves)."""

    def __init__(self, rec=None, now_ns=0):
        self.now_ns = now_ns
        if rec is None:
            self.busy = self.queue = self.unseen = 0
            self.ios = self.bytes = self.wait = (0,) * len(GROUPS)
            return
        since = max(0, now_ns - int(rec["last_ns"])) if rec["inflight"] else 0
        self.busy = int(rec["busy_ns"]) + since
        self.queue = int(rec["queue_ns"]) + since * int(rec["inflight"])
        self.unseen = int(rec["unseen_ends"])
        self.ios, self.bytes, self.wait = (tuple(int(x) for x in rec[f])
                                           for f in ("ios", "bytes", "wait_ns"))

    def not_below(self, prev):
        """The integrals never decrease: a change stamped by a program just before our clock
        read but stored just after the map read (clocks are read outside the lock) makes one
        extension slightly long; hold the figures until the next reading passes them, so the
        interval deltas stay >= 0 and still sum to the true total."""
        if prev is not None:
            self.busy, self.queue = max(self.busy, prev.busy), max(self.queue, prev.queue)
        return self

    def delta(self, prev, disk):
        """iostat's figures for the interval from prev to self."""
        secs = (self.now_ns - prev.now_ns) / 1e9
        ios, nbytes, wait = ([(a - b) % U64 for a, b in zip(new, old)] for new, old in (
            (self.ios, prev.ios), (self.bytes, prev.bytes), (self.wait, prev.wait)))
        rw_ios = ios[0] + ios[1]
        return {
            "disk": disk, "interval_s": round(secs, 6),
            **{f"{g}s": n for g, n in zip(GROUPS, ios)},
            "read_bytes": nbytes[0], "write_bytes": nbytes[1], "discard_bytes": nbytes[2],
            "r_s": ios[0] / secs, "w_s": ios[1] / secs,
            "rkB_s": nbytes[0] / 1024 / secs, "wkB_s": nbytes[1] / 1024 / secs,
            "aqu_sz": (self.queue - prev.queue) % U64 / 1e9 / secs,
            "util_pct": min(100.0, 100 * ((self.busy - prev.busy) % U64) / 1e9 / secs),
            "await_ms": (wait[0] + wait[1]) / 1e6 / rw_ios if rw_ios else 0.0,
            "r_await_ms": wait[0] / 1e6 / ios[0] if ios[0] else 0.0,
            "w_await_ms": wait[1] / 1e6 / ios[1] if ios[1] else 0.0,
            "unseen_ends": self.unseen - prev.unseen,
        }


def active(row):
    return any(row[f"{g}s"] for g in GROUPS) or row["util_pct"] > 0


class Biostat(Tool):
    name = "biostat"
    summary = "IOPS, throughput, queue depth and utilisation per disk"
    description = (
        "iostat's r/s w/s rkB/s wkB/s aqu-sz %util await per disk and interval, measured\n"
        "from block-layer events rather than read from /proc/diskstats. A request counts\n"
        "from block_io_start to block_io_done, the span /proc/diskstats accounts: %util\n"
        "is the share of the interval with at least one request in flight, aqu-sz the\n"
        "time-weighted average number in flight, both exact (no jiffy sampling). await\n"
        "is the average start-to-done time of the read and write requests completed in\n"
        "the interval. Only disks with I/O in the interval are shown; requests already\n"
        "in flight when tracing starts are not counted. Needs tp_btf and the block_io_*\n"
        "tracepoints (Linux >= 6.5): the per-disk integral is kept under a bpf_spin_lock,\n"
        "which raw tracepoint programs may not take.")

    banner = "Tracing block I/O per disk... Hit Ctrl-C to end."
    intervals = True
    default_interval = 1
    options = (TIMESTAMP, Option("-d", "--disk", metavar="DISK", help="trace this disk only"))

    def configure(self, spec, opts):
        if opts.disk:
            spec.set_global("targ_dev", disk_dev(opts.disk))

    def attach(self, obj, opts):
        obj.attach_all()
        self._disks, self._start = DiskNames(), Reading(now_ns=time.monotonic_ns())
        self._prev = {}

    def collect(self, obj, opts):
        """One row per disk with I/O since the last call, by name: disk, r_s, w_s, rkB_s,
        wkB_s, aqu_sz, util_pct, await_ms."""
        # the clock first: every in-flight change stamped before it is then in the record, so
        # extending the integrals from the record's last change to now never runs over a
        # change the record missed
        now = time.monotonic_ns()
        keys, values = obj.map("stats").read_all()
        rows = []
        for dev, rec in zip(keys.tolist(), values):
            cur = Reading(rec, now).not_below(self._prev.get(dev))
            rows.append(cur.delta(self._prev.get(dev, self._start), self._disks(dev)))
            self._prev[dev] = cur
        self._start.now_ns = now  # a disk first seen later starts from this reading
        return sorted(filter(active, rows), key=lambda r: r["disk"])

    def render(self, rows, opts, out):
        out.text("%-12s %9s %9s %10s %10s %7s %6s %8s" % (
            "Device", "r/s", "w/s", "rkB/s", "wkB/s", "aqu-sz", "%util", "await"))
        for r in rows:
            out.text("%-12s %9.2f %9.2f %10.2f %10.2f %7.2f %6.2f %8.3f" % (
                r["disk"], r["r_s"], r["w_s"], r["rkB_s"], r["wkB_s"], r["aqu_sz"],
                r["util_pct"], r["await_ms"]))
