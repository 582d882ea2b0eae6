"""diagnose must name the right bottleneck for honest reproductions of each kind of slowness,
account for all of the target's time, and cross-check its run-queue figure with schedstat."""
import json
import os
import subprocess
import sys

import pytest

from helpers import CpuHogs, Running
from workload import Gated, compile_c

pytestmark = pytest.mark.bpf


def diagnose(pid, seconds, *extra):
    tool = Running("diagnose", "-p", pid, "-d", seconds, "--json", *extra).wait_attached()
    return tool


def report_of(tool):
    rc, out, err = tool.finish(timeout=120)
    assert rc == 0, err
    assert "Traceback" not in err
    return json.loads(out)


def check_accounting(report, threads=1):
    """The shares add up to the threads' wall time (within 5%)."""
    total = sum(report["time_breakdown"].values())
    expected = report["duration_s"] * threads
    assert abs(total - expected) / expected < 0.05, (total, expected, report["time_breakdown"])


SPIN_AND_MEASURE = """
import os, time
def run_delay():
    return sum(int(open(f"/proc/self/task/{t}/schedstat").read().split()[1])
               for t in os.listdir("/proc/self/task"))
d0 = run_delay(); end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
result = run_delay() - d0
"""


def test_cpu_bound_with_hogs_is_cpu_and_runqueue_matches_schedstat():
    with CpuHogs(2), Gated.python(SPIN_AND_MEASURE, 3) as w:
        tool = diagnose(w.pid, 5)
        run_delay = int(w.run()[0])  # the target's own run_delay over its busy period
        report = report_of(tool)
    assert report["verdict"]["bottleneck"] == "cpu", report["verdict"]
    check_accounting(report)
    measured = report["time_breakdown"]["runqueue"]
    expected = run_delay / 1e9
    assert expected > 0.5
    assert abs(measured - expected) / expected < 0.10, (measured, expected)
    cpu = next(f for f in report["findings"] if f["resource"] == "cpu")
    assert cpu["severity"] == "bottleneck" and cpu["evidence"]["runqueue_latency"]["count"] > 0


DIRECT_SYNC_WRITES = """
import mmap, os
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT | os.O_DSYNC)
buf = mmap.mmap(-1, 4096); buf.write(b"x" * 4096)
for i in range(256):                      # allocate first: later writes overwrite in place
    os.pwrite(fd, buf, i * 4096)
end = time.monotonic() + float(sys.argv[2]); n = 0
while time.monotonic() < end:
    os.pwrite(fd, buf, (n % 256) * 4096); n += 1
os.close(fd)
result = n
""".replace("import mmap, os", "import mmap, os, time")


def test_small_sync_direct_writes_are_disk(tmp_path):
    path = "/var/tmp/bpfsight-diag-%d" % os.getpid()  # on a real disk, not tmpfs
    try:
        with Gated.python(DIRECT_SYNC_WRITES, path, 4) as w:
            tool = diagnose(w.pid, 5)
            writes = int(w.run()[0])
            report = report_of(tool)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    assert writes > 50
    assert report["verdict"]["bottleneck"] == "disk", (report["verdict"], report["time_breakdown"])
    check_accounting(report)
    disk = next(f for f in report["findings"] if f["resource"] == "disk")
    assert disk["evidence"]["disks"], disk


def test_idle_target_is_none():
    idle = subprocess.Popen(["sleep", "60"])
    try:
        report = report_of(diagnose(idle.pid, 2))
    finally:
        idle.kill()
        idle.wait()
    assert report["verdict"]["bottleneck"] == "none", report["verdict"]
    assert report["time_breakdown"]["sleep"] > 0.95 * report["duration_s"]
    check_accounting(report)
    assert all(f["severity"] != "bottleneck" for f in report["findings"])


LOCK_CONTENTION = r"""
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void *worker(void *arg) {
    while (!stop) {
        pthread_mutex_lock(&m);
        double until = now() + 0.002;          /* hold it 2 ms: the others must wait */
        while (now() < until) ;
        pthread_mutex_unlock(&m);
        usleep(500);                           /* work outside the lock, then come back */
    }
    return 0;
}
int main(int argc, char **argv) {
    pthread_t t[4];
    char line[8];
    printf("ready\n"); fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, worker, 0);
    struct timespec d = {4, 0}; nanosleep(&d, 0);
    stop = 1;
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    printf("done 1\n"); fflush(stdout);
    while (fgets(line, sizeof line, stdin)) ;
    return 0;
}
"""


def test_mutex_contention_is_lock(tmp_path):
    binary = compile_c(LOCK_CONTENTION, tmp_path, "lockwork", flags=("-pthread",))
    with Gated([binary]) as w:
        tool = diagnose(w.pid, 5)
        w.run()
        report = report_of(tool)
    assert report["verdict"]["bottleneck"] == "lock", (report["verdict"], report["time_breakdown"])
    lock = next(f for f in report["findings"] if f["resource"] == "lock")
    assert any(s["syscall"] == "futex" for s in lock["evidence"]["top_syscalls"])


SLOW_PEER_SERVER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(1); print(s.getsockname()[1], flush=True)
c, _ = s.accept()
while True:
    data = c.recv(100)
    if not data:
        break
    time.sleep(0.05)          # a slow peer: 50 ms per answer
    c.sendall(b"ok")
"""

SLOW_PEER_CLIENT = """
import socket
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
end = time.monotonic() + float(sys.argv[2]); n = 0
while time.monotonic() < end:
    c.sendall(b"q"); c.recv(100); n += 1
c.close()
result = n
""".replace("import socket", "import socket, time")


def test_slow_network_peer_is_network():
    server = subprocess.Popen([sys.executable, "-c", SLOW_PEER_SERVER], stdout=subprocess.PIPE,
                              text=True)
    try:
        port = server.stdout.readline().strip()
        with Gated.python(SLOW_PEER_CLIENT, port, 3) as w:
            tool = diagnose(w.pid, 4)
            requests = int(w.run()[0])
            report = report_of(tool)
    finally:
        server.kill()
        server.wait()
    assert 20 < requests < 70
    assert report["verdict"]["bottleneck"] == "network", (report["verdict"],
                                                          report["time_breakdown"])
    check_accounting(report)


SYSCALL_STORM = r"""
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    char line[8]; struct timespec t0, t;
    printf("ready\n"); fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    long n = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int i = 0; i < 1000; i++) getppid();
        n += 1000;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 3);
    printf("done %ld\n", n); fflush(stdout);
    while (fgets(line, sizeof line, stdin)) ;
    return 0;
}
"""


def test_syscall_storm_is_syscall(tmp_path):
    binary = compile_c(SYSCALL_STORM, tmp_path, "storm")
    with Gated([binary]) as w:
        tool = diagnose(w.pid, 4)
        calls = int(w.run()[0])
        report = report_of(tool)
    assert report["verdict"]["bottleneck"] == "syscall", (report["verdict"],
                                                          report["time_breakdown"])
    sc = next(f for f in report["findings"] if f["resource"] == "syscall")
    top = sc["evidence"]["top_by_count"][0]
    assert top["syscall"] == "getppid"
    assert abs(top["count"] - calls) / calls < 0.01, (top["count"], calls)


def test_terminal_and_html_reports(tmp_path):
    idle = subprocess.Popen(["sleep", "60"])
    html = tmp_path / "report.html"
    try:
        tool = Running("diagnose", "-p", idle.pid, "-d", 1, "--html", html).wait_attached()
        rc, out, err = tool.finish()
    finally:
        idle.kill()
        idle.wait()
    assert rc == 0, err
    assert "VERDICT:" in out and "Where the time went" in out and "Findings:" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    page = html.read_text()
    assert page.startswith("<!doctype html>") and 'id="breakdown"' in page
    assert 'id="flamegraph"><svg' in page.replace("\n", "")  # the time flame graph, inline
    import re
    assert not re.search(r'(src|href)\s*=\s*["\']?https?:|url\(\s*["\']?https?:|@import', page)


def test_unknown_pid_is_usage_error():
    from helpers import run_bpfsight
    res = run_bpfsight("diagnose", "-p", "4194303")
    assert res.returncode == 2 and "no process with PID 4194303" in res.stderr


THRASH = """
import os, time
path = sys.argv[1]
with open(path, "wb") as f:
    for _ in range(96):
        f.write(os.urandom(1 << 20))
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
end = time.monotonic() + float(sys.argv[2]); n = 0
while time.monotonic() < end:       # re-read a 96 MiB file through a 32 MiB cgroup
    os.lseek(fd, 0, 0)
    while os.read(fd, 1 << 16):
        n += 1
result = n
"""


@pytest.fixture
def memory_cgroup():
    """A cgroup (v1 memory controller, or v2) limited to 32 MiB; removed afterwards."""
    v1 = "/sys/fs/cgroup/memory"
    path = f"{v1}/bpfsight-test-{os.getpid()}"
    os.mkdir(path)
    with open(f"{path}/memory.limit_in_bytes", "w") as f:
        f.write(str(32 << 20))
    yield path
    os.rmdir(path)


def test_page_cache_thrash_in_small_cgroup_is_memory(memory_cgroup):
    path = "/var/tmp/bpfsight-thrash-%d" % os.getpid()
    try:
        with Gated.python(THRASH, path, 4) as w:
            with open(f"{memory_cgroup}/cgroup.procs", "w") as f:
                f.write(str(w.pid))
            tool = diagnose(w.pid, 6)
            w.run()
            report = report_of(tool)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    memory = next(f for f in report["findings"] if f["resource"] == "memory")
    assert memory["severity"] == "bottleneck", memory
    assert report["verdict"]["bottleneck"] == "memory", (report["verdict"],
                                                         report["time_breakdown"])
    assert memory["evidence"]["refaults_per_s"] > 500


LOSSY_RECEIVER = """
import socket
s = socket.socket(); s.bind(("10.250.2.1", 5002)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
while c.recv(1 << 16):
    pass
"""

LOSSY_SENDER = """
import socket, time
c = socket.create_connection(("10.250.2.1", 5002))
end = time.monotonic() + float(sys.argv[1]); n = 0
while time.monotonic() < end:
    c.sendall(b"x" * 65536); n += 1
c.close()
result = n
"""


def test_tcp_retransmits_on_lossy_path_are_network():
    from netns import LossyPath
    with LossyPath() as path:
        receiver = path.popen(path.b, LOSSY_RECEIVER)
        assert receiver.stdout.readline().strip() == "ready"
        sender = ["ip", "netns", "exec", path.a, sys.executable, "-c",
                  __import__("workload").PYTHON_GATE.format(work=LOSSY_SENDER), "3"]
        with Gated(sender) as w:
            tool = diagnose(w.pid, 4)
            w.run()
            report = report_of(tool)
        receiver.kill()
        receiver.wait()
    net = next(f for f in report["findings"] if f["resource"] == "network")
    assert report["verdict"]["bottleneck"] == "network", (report["verdict"],
                                                          report["time_breakdown"])
    assert net["evidence"]["retransmits"] > 0, net
    check_accounting(report)


def test_cgroup_target_accounts_only_its_members():
    cg = f"/sys/fs/cgroup/unified/bpfsight-diag-{os.getpid()}"
    os.mkdir(cg)
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend=time.monotonic()+30\n"
                                "while time.monotonic() < end: pass"])
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with open(f"{cg}/cgroup.procs", "w") as f:
            f.write(str(sleeper.pid))
        tool = Running("diagnose", "-c", cg, "-d", 2, "--json").wait_attached()
        report = report_of(tool)
    finally:
        for p in (spinner, sleeper):
            p.kill()
            p.wait()
        os.rmdir(cg)
    check_accounting(report, threads=1)  # the sleeper only, not the spinner outside
    assert report["verdict"]["bottleneck"] == "none"
    assert report["time_breakdown"]["on_cpu"] < 0.05


def cpu_busy_pct(seconds_fn):
    """Host CPU busy % over seconds_fn()'s run, from /proc/stat (independent of diagnose)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = read()
    result = seconds_fn()
    t1, i1 = read()
    return 100 * (1 - (i1 - i0) / (t1 - t0)), result


def host_report(seconds):
    return report_of(Running("diagnose", "-d", seconds, "--json").wait_attached())


def test_host_wide_cpu_verdict_follows_utilisation():
    """Host-wide, a few busy threads on mostly idle CPUs are not a CPU bottleneck; CPUs kept
    busy by hogs are."""
    idle_pct, idle = cpu_busy_pct(lambda: host_report(2))
    if idle_pct < 50:
        assert idle["verdict"]["bottleneck"] != "cpu", (idle_pct, idle["verdict"])
    with CpuHogs(os.cpu_count()):
        busy_pct, busy = cpu_busy_pct(lambda: host_report(2))
    assert busy_pct > 85, busy_pct
    assert busy["verdict"]["bottleneck"] == "cpu", (busy_pct, busy["verdict"])
