"""bpfsight exporter: a real Prometheus scrapes it while a known workload runs, and what
Prometheus stores is cross-checked against /proc/diskstats, the workload's own timings and
rusage, and /proc/vmstat; the cardinality cap under 5,000 short-lived processes; 50
concurrent scrapers; bad arguments."""
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from blockdev import diskstats, direct_io
from helpers import CpuHogs
from promkit import OPENMETRICS, Exporter, PrometheusServer, gunzip, samples, total
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf


def settle_device():
    """Closing a block device opened for writing makes udev probe it (reads): let those land
    before diskstats is read, so both sides see the same requests."""
    time.sleep(0.3)
    subprocess.run(["udevadm", "settle"], capture_output=True)


def test_prometheus_scrape_matches_diskstats(loop_device, tmp_path):
    disk = os.path.basename(loop_device)
    sel = f'disk="{disk}"'
    with Exporter("--collectors", "biolatency,biostat") as exporter, \
            PrometheusServer(tmp_path, [exporter.address]) as prom:
        prom.wait_scrape_after(time.time())
        before = diskstats(loop_device)
        latencies = []
        direct_io(loop_device, 400, size=16384, latencies=latencies)
        direct_io(loop_device, 200, size=4096, write=False, latencies=latencies)
        settle_device()
        after = diskstats(loop_device)
        prom.wait_scrape_after(time.time())
        want = {k: after[k] - before[k] for k in before}
        ios = want["reads"] + want["writes"] + want["discards"] + want["flushes"]
        got_ios = prom.scalar(f"sum(bpfsight_block_io_requests_total{{{sel}}})")
        got_bytes = prom.scalar(f"sum(bpfsight_block_io_bytes_total{{{sel}}})")
        hist_count = prom.scalar(f"sum(bpfsight_block_io_latency_seconds_count{{{sel}}})")
        hist_sum = prom.scalar(f"sum(bpfsight_block_io_latency_seconds_sum{{{sel}}})")
        p99 = prom.scalar("histogram_quantile(0.99, sum by (le) "
                          f"(bpfsight_block_io_latency_seconds_bucket{{{sel}}}))")
        ops = {m["op"] for m, _ in prom.query(f"bpfsight_block_io_requests_total{{{sel}}}")}
        buckets = prom.query(f'sum by (le) (bpfsight_block_io_latency_seconds_bucket{{{sel}}})')
    mean_syscall = statistics.mean(latencies)
    print(f"ios {got_ios} vs diskstats {ios}; hist count {hist_count}; mean block latency "
          f"{hist_sum / hist_count * 1e6:.1f} us vs syscall {mean_syscall * 1e6:.1f} us; "
          f"p99 {p99 * 1e6:.1f} us vs syscall p99 "
          f"{sorted(latencies)[int(len(latencies) * 0.99)] * 1e6:.1f} us")
    assert ios >= 600
    assert abs(got_ios - ios) <= 0.05 * ios, (got_ios, want)
    assert abs(got_bytes - 512 * (want["sectors_read"] + want["sectors_written"])) \
        <= 0.05 * got_bytes, (got_bytes, want)
    assert abs(hist_count - (want["reads"] + want["writes"])) <= 0.05 * ios, (hist_count, want)
    assert {"read", "write"} <= ops
    # cumulative buckets, le in seconds doubling from 2 us to 2^25 us, then +Inf = _count
    cum = sorted((float(m["le"]), v) for m, v in buckets)
    assert [le for le, _ in cum] == [2e-6 * 2 ** i for i in range(25)] + [float("inf")]
    assert all(a[1] <= b[1] for a, b in zip(cum, cum[1:])) and cum[-1][1] == hist_count
    # each request is in flight only inside its syscall: block latency is below syscall time
    assert 0 < hist_sum / hist_count <= mean_syscall * 1.02, (hist_sum / hist_count, mean_syscall)
    # log2 buckets: the p99 estimate lies within a factor 2 of the true p99, which is at most
    # the slowest syscall's time
    assert 0 < p99 <= 2 * max(latencies), (p99, max(latencies))
    assert p99 >= sorted(latencies)[len(latencies) // 2] / 4, (p99, statistics.median(latencies))


def test_openmetrics_healthz_and_histogram_layout():
    with Exporter("--collectors", "syscount,biolatency", "--max-series", "1000") as exporter:
        status, headers, body = exporter.get(headers={"Accept": OPENMETRICS})
        assert status == 200 and headers["Content-Type"].startswith("application/openmetrics")
        assert body.rstrip().endswith(b"# EOF")
        status, headers, body = exporter.get(headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert headers["Content-Encoding"] == "gzip"
        text = gunzip(body).decode()
        assert exporter.get("/healthz")[:3:2] == (200, b"ok\n")
        assert exporter.get("/nothing")[0] == 404
        first = samples(text)
        for _ in range(5000):
            os.sched_get_priority_max(os.SCHED_OTHER)  # a syscall hardly anything else makes
        for _ in range(300):  # 300 accept4 calls by the exporter itself
            exporter.get("/healthz")
        time.sleep(1.2)  # past the collection cache
        second = exporter.scrape()
    assert "# TYPE bpfsight_block_io_latency_seconds histogram" in text
    calls = lambda found, **lab: total(found, "bpfsight_syscalls_total", **lab)  # noqa: E731
    assert 0 < calls(first) <= calls(second)
    made = (calls(second, syscall="sched_get_priority_max")
            - calls(first, syscall="sched_get_priority_max"))
    assert 5000 <= made <= 5050, made
    # the exporter's own syscalls (serving these requests) are not counted
    accepts = calls(second, syscall="accept4") - calls(first, syscall="accept4")
    assert accepts < 150, accepts


WORK = """
import ctypes
ctypes.CDLL(None).prctl(15, b"bpfswork", 0, 0, 0)  # PR_SET_NAME
print("ready", flush=True)
import mmap
while True:
    m = mmap.mmap(-1, 1 << 20)  # fresh anonymous pages: one minor fault each when touched
    for i in range(0, 1 << 20, mmap.PAGESIZE):
        m[i] = 1
    m.close()
"""


def proc_fields(pid):
    """(run_delay ns from schedstat, minflt from stat) of a single-threaded process."""
    with open(f"/proc/{pid}/schedstat") as f:
        run_delay = int(f.read().split()[1])
    with open(f"/proc/{pid}/stat") as f:
        minflt = int(f.read().rsplit(")", 1)[1].split()[7])
    return run_delay, minflt


def test_per_process_series_match_proc():
    """A busy process among CPU hogs: its run-queue latency _sum grows as its schedstat
    run_delay does, and its minor faults as /proc/PID/stat's minflt; its labels are its comm
    and cgroup."""
    comm = 'comm="bpfswork"'
    with CpuHogs(2):
        work = subprocess.Popen([sys.executable, "-c", WORK], stdout=subprocess.PIPE, text=True)
        try:
            assert work.stdout.readline().strip() == "ready"
            with Exporter("--collectors", "runqlat,pagefaults", "--max-series", "1000") as exp:
                time.sleep(0.5)
                # /proc is read on both sides of each scrape: the collection lies between
                before1, first, after1 = proc_fields(work.pid), exp.scrape(), proc_fields(work.pid)
                time.sleep(3)
                before2, last, after2 = proc_fields(work.pid), exp.scrape(), proc_fields(work.pid)
        finally:
            work.kill()
            work.wait()

    def grew(name, **labels):
        return total(last, name, **labels) - total(first, name, **labels)

    def bounds(i, scale=1):
        return (before2[i] - after1[i]) / scale, (after2[i] - before1[i]) / scale

    waited = grew("bpfsight_runqueue_latency_seconds_sum", comm="bpfswork")
    faults = grew("bpfsight_page_faults_total", comm="bpfswork", type="minor")
    wait_lo, wait_hi = bounds(0, 1e9)
    faults_lo, faults_hi = bounds(1)
    print(f"run-queue wait {waited:.3f} s vs schedstat {wait_lo:.3f}-{wait_hi:.3f} s; minor "
          f"faults {faults} vs /proc/PID/stat {faults_lo}-{faults_hi}")
    assert wait_lo > 0.2, "the workload should have waited for a CPU"
    assert 0.95 * wait_lo <= waited <= 1.05 * wait_hi, (waited, wait_lo, wait_hi)
    assert faults_lo > 1000 and 0.98 * faults_lo <= faults <= 1.02 * faults_hi, \
        (faults, faults_lo, faults_hi)
    labels = next(lab for n, lab, _ in last if n == "bpfsight_page_faults_total"
                  and lab["comm"] == "bpfswork")
    with open("/proc/self/cgroup") as f:  # the workload is in the test's cgroup
        assert labels["cgroup"] == f.read().split("::", 1)[1].strip(), (labels, comm)


def test_tcp_retransmits_and_drops():
    """Retransmits on a lossy path between namespaces match the sender's RetransSegs; SYNs to
    a closed port are counted as NO_SOCKET drops."""
    from netns import LossyPath
    from tcpload import ClosedPort
    from test_tcpretrans import CLIENT, SERVER, SIZE, agrees
    refused = 20
    with Exporter("--collectors", "tcpretrans,tcpdrop", "--max-series", "1000") as exp, \
            LossyPath() as path:
        first = exp.scrape()
        sent_before = path.snmp(path.a, "Tcp", "RetransSegs")
        server = path.popen(path.b, SERVER)
        assert server.stdout.readline().strip() == "ready"
        client = path.popen(path.a, CLIENT, SIZE)
        client.stdout.readline()
        assert int(server.stdout.readline()) == SIZE
        client.wait(), server.wait()
        resent = path.snmp(path.a, "Tcp", "RetransSegs") - sent_before
        with ClosedPort() as port:
            for _ in range(refused):
                with socket.socket() as c, pytest.raises(ConnectionRefusedError):
                    c.connect(("127.0.0.1", port))
        time.sleep(1.1)  # past the collection cache
        last = exp.scrape()

    def grew(name, **labels):
        return total(last, name, **labels) - total(first, name, **labels)

    seen = grew("bpfsight_tcp_retransmits_total", remote_addr=LossyPath.RECEIVER)
    drops = grew("bpfsight_tcp_drops_total", reason="NO_SOCKET")
    print(f"retransmits {seen} vs RetransSegs {resent}; NO_SOCKET drops {drops} for "
          f"{refused} refused SYNs")
    assert resent > 10 and agrees(seen, resent), (seen, resent)
    assert refused <= drops <= refused + 10, drops  # other loopback refusals may add a few


def test_oom_kills_match_the_memory_cgroup():
    """Two hogs killed in a memory cgroup: the OOM-kill counter grows by the cgroup's own
    oom_kill count, under the victims' comm."""
    from test_oomkill import HOG, LIMIT, MemoryCgroup
    with Exporter("--collectors", "oomkill", "--max-series", "1000") as exp, \
            MemoryCgroup(LIMIT) as cg:
        first = exp.scrape()
        for _ in range(2):
            hog = subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=cg.join)
            assert hog.wait(timeout=60) == -signal.SIGKILL
        kills = int(cg.oom_kills())
        time.sleep(1.1)  # past the collection cache
        last = exp.scrape()
    seen = total(last, "bpfsight_oom_kills_total") - total(first, "bpfsight_oom_kills_total")
    comms = {lab["comm"] for n, lab, _ in last if n == "bpfsight_oom_kills_total"}
    assert kills == 2 and seen == kills, (seen, kills)
    assert any(c.startswith("python") for c in comms), comms


LOCKS = """
import ctypes, threading, time
lock, blocked = threading.Lock(), []

def waiter():
    ctypes.CDLL(None).prctl(15, b"bpfswaiter", 0, 0, 0)  # this thread's comm
    for _ in range(40):
        time.sleep(0.002)  # let the holder take the lock first
        t0 = time.perf_counter()
        with lock:
            blocked.append(time.perf_counter() - t0)

def holder():
    for _ in range(40):
        with lock:
            time.sleep(0.01)
        time.sleep(0.001)

threads = [threading.Thread(target=f) for f in (holder, waiter)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sum(blocked), flush=True)
"""


def test_futex_waits_of_a_contended_mutex():
    """A thread blocking on a mutex another holds: its futex wait time is the time it spent
    in acquire() (measured by the workload itself), plus brief waits for the GIL."""
    with Exporter("--collectors", "lockstat", "--max-series", "1000") as exp:
        first = exp.scrape()
        out = subprocess.run([sys.executable, "-c", LOCKS], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        time.sleep(1.1)  # past the collection cache
        last = exp.scrape()
    blocked = float(out)
    name, who = "bpfsight_lock_wait_seconds_total", dict(comm="bpfswaiter", kind="futex")
    waited = total(last, name, **who) - total(first, name, **who)
    print(f"futex wait {waited:.3f} s vs {blocked:.3f} s blocked in acquire()")
    assert blocked > 0.1
    assert 0.9 * blocked <= waited <= 1.1 * blocked + 0.05, (waited, blocked)


FORKS = """
import ctypes, os, sys, time
n, nap = int(sys.argv[1]), float(sys.argv[2])
libc, minflt = ctypes.CDLL(None), 0
for i in range(n):
    pid = os.fork()
    if pid == 0:
        libc.prctl(15, b"bomb%d" % i, 0, 0, 0)  # PR_SET_NAME
        time.sleep(nap)
        bytearray(64 * 1024)
        os._exit(0)
    minflt += os.wait4(pid, 0)[2].ru_minflt
print(minflt)
"""


def forks(n, nap):
    """n children in turn, forked by a small Python process (a fork of pytest costs several
    times more): each renames itself bombN, sleeps nap seconds, touches 64 KiB and exits.
    Returns the children's minor faults, from their rusage."""
    out = subprocess.run([sys.executable, "-c", FORKS, str(n), str(nap)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return int(out)


def vmstat(field):
    with open("/proc/vmstat") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(field + " "))


def label_sets(found, name, dim):
    return {tuple(sorted((k, v) for k, v in lab.items() if k != dim))
            for n, lab, _ in found if n == name}


def test_cardinality_cap_under_5000_processes():
    """6,000 processes, each with its own comm: at most --max-series named label sets per
    metric plus "other", and nothing lost: the children's faults (their rusage) all land in
    some series, which together stay below every fault the kernel took (/proc/vmstat), also
    across the drain of the per-pid map once it passed half full (10240 entries)."""
    n, nap, cap = 6000, 0.0002, 5
    with Exporter("--collectors", "offcputime,pagefaults", "--max-series", str(cap)) as exporter:
        fault0 = vmstat("pgfault")  # vmstat's window holds the exported one
        start = exporter.scrape()
        rss0 = exporter.rss_kb()
        stop, scrapes = threading.Event(), []

        def scrape_meanwhile():  # scrapes during the storm: map drains happen between them
            while not stop.wait(0.5):
                scrapes.append(exporter.get()[0])

        scraper = threading.Thread(target=scrape_meanwhile)
        scraper.start()
        try:
            child_faults = forks(n, nap)
        finally:
            stop.set()
            scraper.join()
        time.sleep(1.1)  # past the collection cache
        end = exporter.scrape()
        fault1 = vmstat("pgfault")
        rss1 = exporter.rss_kb()
    slept = (total(end, "bpfsight_offcpu_seconds_total", cause="sleeping")
             - total(start, "bpfsight_offcpu_seconds_total", cause="sleeping"))
    minor = (total(end, "bpfsight_page_faults_total", type="minor")
             - total(start, "bpfsight_page_faults_total", type="minor"))
    print(f"{n} children: {child_faults} minor faults (rusage), exported {minor}, "
          f"vmstat {fault1 - fault0}; slept >= {n * nap:.2f} s, exported {slept:.2f} s; "
          f"RSS {rss0} -> {rss1} kB; drains {total(end, 'bpfsight_map_drains_total')}")
    for name, dim in (("bpfsight_offcpu_seconds_total", "cause"),
                      ("bpfsight_page_faults_total", "type")):
        sets = label_sets(end, name, dim)
        assert len(sets) <= cap + 1, (name, len(sets))
    offcpu = label_sets(end, "bpfsight_offcpu_seconds_total", "cause")
    assert any(dict(s)["comm"] == "other" for s in offcpu), offcpu
    assert sum(dict(s)["comm"].startswith("bomb") for s in offcpu) <= cap
    # every child slept at least `nap`; all of it is credited somewhere (named or other)
    assert slept >= 0.95 * n * nap, slept
    assert 0.95 * child_faults <= minor <= 1.02 * (fault1 - fault0), \
        (minor, child_faults, fault1 - fault0)
    assert total(end, "bpfsight_map_drains_total", collector="pagefaults") >= 1
    assert len(scrapes) >= 3 and set(scrapes) == {200}, scrapes
    assert rss1 - rss0 < 40 * 1024, (rss0, rss1)


def test_50_concurrent_scrapers(loop_device):
    """50 scrapers for 30 s while the disk works: every scrape answers, counters never go
    back, the exporter's memory stays flat, and the I/O count is still right."""
    scrapers, duration = 50, 30
    disk = os.path.basename(loop_device)
    with Exporter("--collectors", "biostat,syscount,runqlat") as exporter:
        exporter.scrape()
        before, rss = diskstats(loop_device), [exporter.rss_kb()]
        results, stop = [], threading.Event()

        def scraper(i):
            headers = {"Accept": OPENMETRICS} if i % 2 else {"Accept-Encoding": "gzip"}
            last, ok, bad = {}, 0, []
            while not stop.is_set():
                status, resp_headers, body = exporter.get(headers=headers)
                if status != 200:
                    bad.append(status)
                    continue
                if resp_headers.get("Content-Encoding") == "gzip":
                    body = gunzip(body)
                text = body.decode()
                if i % 2 == 0 and ok % 5 == 0:  # full parse now and then: it costs the GIL
                    for n, lab, v in samples(text):
                        if n.endswith("_total"):
                            key = (n, tuple(sorted(lab.items())))
                            if v < last.get(key, 0):
                                bad.append((key, last[key], v))
                            last[key] = v
                elif "bpfsight_scrape_duration_seconds" not in text or not (
                        text.rstrip().endswith("# EOF") if i % 2 else text.endswith("\n")):
                    bad.append("truncated")
                ok += 1
            results.append((ok, bad))

        threads = [threading.Thread(target=scraper, args=(i,)) for i in range(scrapers)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            direct_io(loop_device, 50, size=4096)
            rss.append(exporter.rss_kb())
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        settle_device()
        after = diskstats(loop_device)
        time.sleep(1.1)
        final = exporter.scrape()
        with open(f"/proc/{exporter.pid}/status") as f:
            threads_left = next(int(ln.split()[1]) for ln in f if ln.startswith("Threads:"))
    ios = (after["reads"] + after["writes"]) - (before["reads"] + before["writes"])
    got = total(final, "bpfsight_block_io_requests_total", disk=disk)
    settled = rss[len(rss) // 4]
    print(f"{sum(ok for ok, _ in results)} scrapes by {scrapers} scrapers; I/O {got} vs "
          f"diskstats {ios}; RSS kB {rss[0]} -> max {max(rss)} (after warm-up {settled}); "
          f"threads after {threads_left}")
    assert len(results) == scrapers
    assert all(not bad for _, bad in results), [bad[:3] for _, bad in results if bad][:3]
    assert sum(ok for ok, _ in results) >= scrapers * 10
    assert ios > 0 and abs(got - ios) <= 0.05 * ios, (got, ios)
    # memory: flat after the first seconds of load (no growth per scrape)
    assert max(rss) - settled < 20 * 1024, rss
    assert threads_left < 10, threads_left


@pytest.mark.parametrize("args", [
    ["--listen", "nowhere"],
    ["--listen", "127.0.0.1:70000"],
    ["--collectors", "biolatency,nosuchtool"],
    ["--max-series", "0"],
    ["--cache", "-1"],
])
def test_bad_arguments(args):
    assert_usage_error("exporter", *args)


def test_address_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        err = assert_usage_error("exporter", "--collectors", "syscount",
                                 "--listen", "127.0.0.1:%d" % s.getsockname()[1])
    assert "cannot listen" in err
