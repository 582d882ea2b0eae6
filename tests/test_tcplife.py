"""tcplife cross-checked against the bytes a loopback workload sent and received itself."""
import pytest

from tcpload import free_port, sessions
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

N, SIZE, REPLY = 4, 300_000, 40_000


def test_sessions_with_their_ports_and_bytes():
    recs, work, pid = sessions("tcplife", n=N, size=SIZE, reply=REPLY)
    port, clients = work["port"], work["clients"]
    assert work["received"] == [SIZE] * N and work["replies"] == [REPLY] * N
    client_side = [r for r in recs if r["rport"] == port and r["lport"] in clients]
    server_side = [r for r in recs if r["lport"] == port and r["rport"] in clients]
    assert sorted(r["lport"] for r in client_side) == sorted(clients), recs
    assert sorted(r["rport"] for r in server_side) == sorted(clients), recs
    # At CLOSE every byte each end sent has been acknowledged (each read the other's data to
    # EOF before the last FIN). The kernel's bytes_acked/bytes_received follow snd_una/rcv_nxt,
    # which also step over SYN and FIN (one sequence number each): data + 0..2, exactly.
    def data(got, sent):
        return sent <= got <= sent + 2
    for r in client_side:
        assert data(r["tx_b"], SIZE) and data(r["rx_b"], REPLY), r
    for r in server_side:
        assert data(r["rx_b"], SIZE) and data(r["tx_b"], REPLY), r
    assert all(r["pid"] == pid and r["comm"].startswith("python") for r in recs), recs
    assert all(r["laddr"] == r["raddr"] == "127.0.0.1" and r["ip"] == 4 for r in recs)
    # Lifetimes against the workload's own clock (CLOCK_MONOTONIC, as the tool's ts_ns; the
    # session is born at ESTABLISHED and dies at CLOSE; birth = ts_ns - span), exact on any
    # machine. Client: ESTABLISHED is reached inside connect(); CLOSE comes with the server's
    # FIN, which follows our shutdown() and is processed before recv() can return EOF.
    # Server: it is born after the client called connect() and before the first data could be
    # read, and dies only after its own close() sent its FIN.
    for r in client_side:
        t0, t1, t2, t3 = work["times"][str(r["lport"])]
        born = r["ts_ns"] - r["ms"] * 1e6
        assert t0 - 1 <= born <= t1 + 1 and t2 <= r["ts_ns"] <= t3, (r, t0, t1, t2, t3)
    for r in server_side:
        t0 = work["times"][str(r["rport"])][0]
        first, closing = work["served"][str(r["rport"])]
        born = r["ts_ns"] - r["ms"] * 1e6
        assert t0 - 1 <= born <= first + 1 and r["ts_ns"] >= closing, (r, t0, first, closing)
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
