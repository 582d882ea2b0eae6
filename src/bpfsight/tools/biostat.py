"""biostat: iostat's per-disk figures (IOPS, throughput, queue size, utilisation, await)
computed from block-layer events instead of /proc/diskstats."""
import time

from ..blockio import DiskNames, disk_dev
from ..report.output import clock_hms
from ..tool import (StopSignal, Tool, add_interval_args, add_output_args, interval_loop,
                    open_spec, output_for, select_hooks)

GROUPS = ("read", "write", "discard", "flush")  # bpf/include/biostat.h, /proc/diskstats order
U64 = 1 << 64


def stat_dtype():
    """struct disk_stat (bpf/include/biostat.h)."""
    import numpy as np
    n = len(GROUPS)
    return np.dtype([("lock", "<u4"), ("inflight", "<u4"), ("last_ns", "<u8"),
                     ("busy_ns", "<u8"), ("queue_ns", "<u8"), ("ios", "<u8", (n,)),
                     ("bytes", "<u8", (n,)), ("wait_ns", "<u8", (n,)),
                     ("unseen_ends", "<u8")])


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

    def add_arguments(self, p):
        p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-d", "--disk", metavar="DISK", help="trace this disk only")
        add_output_args(p)
        add_interval_args(p, default_interval=1)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("biostat", args, self.name)
        if args.disk:
            spec.set_global("targ_dev", disk_dev(args.disk))
        select_hooks(spec, self.name)
        with StopSignal() as stop, spec.load() as obj:
            obj.attach_all()
            stats = obj.map("stats", key="<u4", value=stat_dtype)
            disk, start = DiskNames(), Reading(now_ns=time.monotonic_ns())
            prev = {}
            out.banner("Tracing block I/O per disk... Hit Ctrl-C to end.")

            def tick():
                # the clock first: every in-flight change stamped before it is then in the
                # record, so extending the integrals from the record's last change to now never
                # runs over a change the record missed
                now = time.monotonic_ns()
                keys, values = stats.read_all()
                rows = []
                for dev, rec in zip(keys.tolist(), values):
                    cur = Reading(rec, now).not_below(prev.get(dev))
                    rows.append(cur.delta(prev.get(dev, start), disk(dev)))
                    prev[dev] = cur
                start.now_ns = now  # a disk first seen later starts from this reading
                self.show(args, out, sorted(filter(active, rows), key=lambda r: r["disk"]))

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    def show(self, args, out, rows):
        out.text()
        if args.timestamp:
            out.text(clock_hms())
        out.text("%-12s %9s %9s %10s %10s %7s %6s %8s" % (
            "Device", "r/s", "w/s", "rkB/s", "wkB/s", "aqu-sz", "%util", "await"))
        for r in rows:
            out.record({"tool": self.name, **r})
            out.text("%-12s %9.2f %9.2f %10.2f %10.2f %7.2f %6.2f %8.3f" % (
                r["disk"], r["r_s"], r["w_s"], r["rkB_s"], r["wkB_s"], r["aqu_sz"],
                r["util_pct"], r["await_ms"]))
