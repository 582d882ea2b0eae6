"""tcpconnect cross-checked against the connections a loopback workload made itself: every one
counted once, with its ports, uid and the workload's pid."""
import os

import pytest

from tcpload import ClosedPort, REFUSED, free_port, sessions, traced
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

N = 5


def test_connects_counted_exactly_with_ports_and_pid():
    recs, work, pid = sessions("tcpconnect", "-L", "-U", n=N)
    assert len(recs) == N, recs
    assert sorted(r["lport"] for r in recs) == sorted(work["clients"])
    for r in recs:
        assert (r["pid"], r["rport"], r["uid"], r["ip"]) == (pid, work["port"], os.getuid(), 4), r
        assert r["laddr"] == r["raddr"] == "127.0.0.1" and r["established"], r


def test_latency_is_measured_and_failures_are_reported():
    recs, work, pid = sessions("tcpconnect", "--latency", n=N)
    assert len(recs) == N, recs
    # The tool times SYN_SENT -> ESTABLISHED, both inside the blocking connect() the workload
    # timed itself on the same clock: per connection 0 < latency <= that call's own time, on
    # any machine (1e-9 ms: float rounding of the ns figures only).
    for r in recs:
        t0, t1 = work["times"][str(r["lport"])][:2]
        assert 0 < r["lat_ms"] <= (t1 - t0) / 1e6 + 1e-9, (r, t1 - t0)
    with ClosedPort() as port:
        recs, work, pid = traced("tcpconnect", work=REFUSED, work_args=(3, port))
    assert work["refused"] == 3
    assert sorted(r["lport"] for r in recs) == sorted(work["clients"]), recs
    assert all(r["rport"] == port and not r["established"] for r in recs), recs


def test_count_mode_and_port_filter():
    port = free_port()
    recs, work, _ = sessions("tcpconnect", "-c", "-P", f"{port},1", n=N, port=port)
    assert recs == [{"tool": "tcpconnect", "ip": 4, "laddr": "127.0.0.1", "raddr": "127.0.0.1",
                     "rport": port, "connects": N}]
    recs, _, _ = sessions("tcpconnect", "-P", "1", n=2)
    assert recs == []


@pytest.mark.parametrize("args", [["-P", "70000"], ["-u", "nosuchuser"], ["-p", "x"],
                                  ["-p", "999999999"], ["--cgroup", "/no/such/cgroup"]])
def test_bad_arguments(args):
    assert_usage_error("tcpconnect", *args)
