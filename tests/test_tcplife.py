"""tcplife cross-checked against the bytes a loopback workload sent and received itself."""
import pytest

from tcpload import free_port, sessions
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

N, SIZE, REPLY = 4, 300_000, 40_000


def near(value, expected):
    return abs(value - expected) <= 0.05 * expected


def test_sessions_with_their_ports_and_bytes():
    recs, work, pid = sessions("tcplife", n=N, size=SIZE, reply=REPLY)
    port, clients = work["port"], work["clients"]
    assert work["received"] == [SIZE] * N and work["replies"] == [REPLY] * N
    client_side = [r for r in recs if r["rport"] == port and r["lport"] in clients]
    server_side = [r for r in recs if r["lport"] == port and r["rport"] in clients]
    assert sorted(r["lport"] for r in client_side) == sorted(clients), recs
    assert sorted(r["rport"] for r in server_side) == sorted(clients), recs
    for r in client_side:
        assert near(r["tx_b"], SIZE) and near(r["rx_b"], REPLY), r
    for r in server_side:
        assert near(r["rx_b"], SIZE) and near(r["tx_b"], REPLY), r
    assert all(r["pid"] == pid and r["comm"].startswith("python") for r in recs), recs
    assert all(r["laddr"] == r["raddr"] == "127.0.0.1" and r["ip"] == 4 for r in recs)
    assert all(0 < r["ms"] < 10_000 for r in recs)
    assert len(recs) == 2 * N, recs  # -p: nothing from other processes


def test_local_and_remote_port_filters():
    port = free_port()
    recs, work, _ = sessions("tcplife", "-L", port, n=2, port=port)
    assert len(recs) == 2 and all(r["lport"] == port for r in recs), recs
    recs, work, _ = sessions("tcplife", "-D", f"1,{port}", n=2, port=port)
    assert len(recs) == 2 and all(r["rport"] == port for r in recs), recs
    assert sorted(r["lport"] for r in recs) == sorted(work["clients"])


@pytest.mark.parametrize("args", [["-L", "0"], ["-D", "http"], ["-p", "0"], ["-4", "-6"],
                                  ["-p", "999999999"]])
def test_bad_arguments(args):
    assert_usage_error("tcplife", *args)
