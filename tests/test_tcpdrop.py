"""tcpdrop cross-checked against a workload that knows how many of its SYNs the kernel must
drop: connects to a loopback port with no listener, each refused (NO_SOCKET drop + RST)."""
import pytest

from tcpload import REFUSED, ClosedPort, traced
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

N = 6


def test_refused_syns_dropped_with_reason_no_socket():
    with ClosedPort() as port:
        recs, work, _ = traced("tcpdrop", "-4", work=REFUSED, work_args=(N, port), by_pid=False)
    assert work["refused"] == N
    mine = [r for r in recs if r["dport"] == port]
    assert len(mine) == N, mine
    assert sorted(r["sport"] for r in mine) == sorted(work["clients"])
    for r in mine:
        assert (r["reason"], r["flags"], r["state"], r["ip"]) == ("NO_SOCKET", "SYN", "-", 4), r
        assert r["saddr"] == r["daddr"] == "127.0.0.1"


def test_stack_names_the_tcp_receive_path():
    with ClosedPort() as port:
        recs, _, _ = traced("tcpdrop", "--stack", work=REFUSED, work_args=(2, port), by_pid=False)
    mine = [r for r in recs if r["dport"] == port]
    assert len(mine) == 2
    for r in mine:
        assert "tcp_v4_rcv" in r["stack"], r["stack"]
        assert not r["stack"][0].startswith("bpf_"), r["stack"]


def test_ipv6_filter_hides_ipv4_drops():
    with ClosedPort() as port:
        recs, _, _ = traced("tcpdrop", "-6", work=REFUSED, work_args=(2, port), by_pid=False)
    assert not [r for r in recs if r["dport"] == port]


@pytest.mark.parametrize("args", [["-4", "-6"], ["--duration", "x"], ["-p", "1"]])
def test_bad_arguments(args):
    assert_usage_error("tcpdrop", *args)
