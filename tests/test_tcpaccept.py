"""tcpaccept cross-checked against the connections a loopback workload accepted itself: every
one counted once, with its ports and the workload's pid."""
import pytest

from tcpload import free_port, sessions
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

N = 5


def test_accepts_counted_exactly_with_ports_and_pid():
    recs, work, pid = sessions("tcpaccept", n=N)
    assert len(recs) == N, recs
    assert sorted(r["rport"] for r in recs) == sorted(work["clients"])
    for r in recs:
        assert (r["pid"], r["lport"], r["ip"]) == (pid, work["port"], 4), r
        assert r["laddr"] == r["raddr"] == "127.0.0.1", r


def test_accept_port_filter():
    port = free_port()
    recs, work, _ = sessions("tcpaccept", "-P", port, n=2, port=port)
    assert sorted(r["rport"] for r in recs) == sorted(work["clients"]), recs
    recs, _, _ = sessions("tcpaccept", "-P", "1", n=2)
    assert recs == []


@pytest.mark.parametrize("args", [["-P", ""], ["-P", "1,2,3,4,5,6,7,8,9"], ["-p", "999999999"]])
def test_bad_arguments(args):
    assert_usage_error("tcpaccept", *args)
