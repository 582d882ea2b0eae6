"""hardirqs and softirqs cross-checked against the kernel's own interrupt counters
(/proc/interrupts, /proc/softirqs) over the same window, while the test makes interrupts:
O_DIRECT disk reads (a block device interrupt and BLOCK softirqs) and loopback UDP (NET_RX)."""
import json
import mmap
import os
import signal
import socket

import pytest

from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf

MIN_EVENTS = 300  # compare only counters that moved this much: the window edges stay < 10%


def proc_interrupts():
    """{handler names: count summed over CPUs} for the numbered IRQ lines."""
    counts = {}
    with open("/proc/interrupts") as f:
        ncpus = len(f.readline().split())
        for line in f:
            irq, _, rest = line.partition(":")
            if not irq.strip().isdigit():
                continue  # LOC, RES, ...: no irqaction, not traced
            fields = rest.split()
            # columns: per-CPU counts, chip, hwirq-type, then the handler names
            counts[" ".join(fields[ncpus + 2:])] = sum(int(n) for n in fields[:ncpus])
    return counts


def proc_softirqs():
    with open("/proc/softirqs") as f:
        f.readline()
        return {ln.split(":")[0].strip().lower(): sum(int(n) for n in ln.split(":")[1].split())
                for ln in f}


def disk_reads(directory, n=2000):
    """n 4 KiB O_DIRECT reads: each goes to the device, none to the page cache."""
    path = os.path.join(directory, "irqs.dat")
    with open(path, "wb") as f:
        f.write(b"\1" * (4 << 20))
        os.fsync(f.fileno())
    buf = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT needs
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        for i in range(n):
            os.preadv(fd, [buf], (i * 7919 % 1024) * 4096)
    finally:
        os.close(fd)


def loopback_udp(n=3000):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        for _ in range(n):
            tx.sendto(b"x", rx.getsockname())
            rx.recv(16)


def window(tool_args, read_counters, work):
    """The tool's JSON records and two counter deltas that bracket its window: `inner` from
    after it attached to before it was stopped (it saw all of these), `outer` from before it
    started to after it exited (it cannot have seen more). On a busy machine the edges of the
    window hold other interrupts; the bracket keeps them from deciding the test."""
    first = read_counters()
    tool = Running(*tool_args, "--json").wait_attached()
    before = read_counters()
    work()
    after = read_counters()
    rc, out, err = tool.stop(signal.SIGINT)
    last = read_counters()
    assert rc == 0, err
    inner = {k: after[k] - before.get(k, 0) for k in after}
    outer = {k: last[k] - first.get(k, 0) for k in last}
    return inner, outer, [json.loads(line) for line in out.splitlines()]


def assert_counts_match(inner, outer, measured, required):
    """Within 10% of the bracket, for every counter the workload moved enough to tell."""
    compared = {k: (measured.get(k, 0), n, outer[k]) for k, n in inner.items() if n >= MIN_EVENTS}
    assert required(compared), (compared, inner)
    for name, (got, low, high) in compared.items():
        assert 0.9 * low <= got <= 1.1 * high, (name, got, low, high)


@pytest.mark.parametrize("mode", [["-C"], []], ids=["count", "time"])
def test_hardirq_counts_match_proc_interrupts(tmp_path, mode):
    inner, outer, recs = window(["hardirqs", *mode], proc_interrupts,
                                lambda: disk_reads(tmp_path))
    measured = {r["hardirq"]: r["count"] for r in recs}
    assert_counts_match(inner, outer, measured, lambda c: any("virtio" in k or "nvme" in k
                                                          or "ata" in k for k in c))
    if not mode:
        assert all(r["total_ns"] > 0 for r in recs)


@pytest.mark.parametrize("mode", [["-C"], []], ids=["count", "time"])
def test_softirq_counts_match_proc_softirqs(mode):
    inner, outer, recs = window(["softirqs", *mode], proc_softirqs, loopback_udp)
    measured = {r["softirq"]: r["count"] for r in recs}
    assert_counts_match(inner, outer, measured, lambda c: "net_rx" in c)


def test_distributions_hold_every_event():
    rc, out, err = Running("softirqs", "-d", "--json", "1", "1").finish()
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert recs and all(r["count"] == sum(b["count"] for b in r["buckets"]) for r in recs)


def test_terminal_output_is_bcc_shaped():
    rc = run_bpfsight("hardirqs", "-C", "1", "1")
    assert rc.returncode == 0, rc.stderr
    lines = rc.stdout.splitlines()
    assert lines[0] == "Tracing hard irq events... Hit Ctrl-C to end."
    assert lines[2] == "%-26s %11s" % ("HARDIRQ", "TOTAL_count")
    rc = run_bpfsight("softirqs", "-N", "1", "1")
    assert rc.stdout.splitlines()[2] == "%-16s %11s" % ("SOFTIRQ", "TOTAL_nsecs")


@pytest.mark.parametrize("tool", ["hardirqs", "softirqs"])
@pytest.mark.parametrize("args", [["-C", "-d"], ["-C", "-N"], ["-c", "4096"], ["-c", "x"],
                                  ["0"], ["1", "0"]])
def test_bad_arguments_are_one_line_exit_2(tool, args):
    rc = run_bpfsight(tool, *args)
    assert rc.returncode == 2
    assert len(rc.stderr.strip().splitlines()) == 1, rc.stderr
