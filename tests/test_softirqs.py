"""softirqs cross-checked against /proc/softirqs over the same window, while the test makes
NET_RX softirqs with loopback UDP."""
import json
import socket

import pytest

from helpers import Running, run_bpfsight
from irqcounters import assert_counts_match, window

pytestmark = pytest.mark.bpf


def proc_softirqs():
    with open("/proc/softirqs") as f:
        f.readline()
        return {ln.split(":")[0].strip().lower(): sum(int(n) for n in ln.split(":")[1].split())
                for ln in f}


def loopback_udp(n=3000):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        for _ in range(n):
            tx.sendto(b"x", rx.getsockname())
            rx.recv(16)


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
    rc = run_bpfsight("softirqs", "-N", "1", "1")
    assert rc.returncode == 0, rc.stderr
    lines = rc.stdout.splitlines()
    assert lines[0] == "Tracing soft irq event time... Hit Ctrl-C to end."
    assert lines[2] == "%-16s %11s" % ("SOFTIRQ", "TOTAL_nsecs")


@pytest.mark.parametrize("args", [["-C", "-d"], ["-C", "-N"], ["-c", "4096"], ["-c", "x"],
                                  ["0"], ["1", "0"]])
def test_bad_arguments_are_one_line_exit_2(args):
    rc = run_bpfsight("softirqs", *args)
    assert rc.returncode == 2
    assert len(rc.stderr.strip().splitlines()) == 1, rc.stderr
