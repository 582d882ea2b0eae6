"""tcptop cross-checked against the bytes a loopback workload sent and received itself, with
the sock tracepoints and with the syscall fallback."""
import pytest

from tcpload import sessions
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

N, SIZE, REPLY = 3, 400_000, 100_000


def totals(recs, local, remote):
    """Bytes (received, sent) summed over every interval for rows whose local/remote
    addr:port pass the given predicates."""
    rows = [r for r in recs if local(r["laddr"]) and remote(r["raddr"])]
    return sum(r["rx_b"] for r in rows), sum(r["tx_b"] for r in rows)


@pytest.mark.parametrize("hooks", [[], ["--syscalls"]], ids=["sock-tracepoints", "syscalls"])
def test_bytes_per_connection(hooks):
    recs, work, pid = sessions("tcptop", "-C", *hooks, "1", n=N, size=SIZE, reply=REPLY)
    server = f"127.0.0.1:{work['port']}"
    clients = {f"127.0.0.1:{p}" for p in work["clients"]}
    assert all(r["pid"] == pid for r in recs), recs
    # Exact, against what the workload itself read and wrote: both hooks count the bytes each
    # send/receive call returned (sock_send/recv_length, or the syscalls' return values), and
    # sendall() hands every byte to such calls. Rows split over intervals are summed.
    assert work["received"] == [SIZE] * N and work["replies"] == [REPLY] * N, work
    # server side: one row per connection; client side likewise
    rx, tx = totals(recs, lambda a: a == server, lambda a: a in clients)
    assert (rx, tx) == (sum(work["received"]), N * REPLY), (rx, tx)
    rx, tx = totals(recs, lambda a: a in clients, lambda a: a == server)
    assert (rx, tx) == (sum(work["replies"]), N * SIZE), (rx, tx)
    assert {r["laddr"] for r in recs} <= clients | {server}, recs


@pytest.mark.parametrize("args", [["0"], ["1", "-1"], ["-p", "-5"], ["-4", "-6"]])
def test_bad_arguments(args):
    assert_usage_error("tcptop", *args)
