"""tcptop cross-checked against the bytes a loopback workload sent and received itself, with
the sock tracepoints and with the syscall fallback."""
import pytest

from tcpload import sessions
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

N, SIZE, REPLY = 3, 400_000, 100_000


def near(value, expected):
    return abs(value - expected) <= 0.05 * expected


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
    # server side: one row per connection; client side likewise
    rx, tx = totals(recs, lambda a: a == server, lambda a: a in clients)
    assert near(rx, N * SIZE) and near(tx, N * REPLY), (rx, tx)
    rx, tx = totals(recs, lambda a: a in clients, lambda a: a == server)
    assert near(rx, N * REPLY) and near(tx, N * SIZE), (rx, tx)
    assert {r["laddr"] for r in recs} <= clients | {server}, recs


@pytest.mark.parametrize("args", [["0"], ["1", "-1"], ["-p", "-5"], ["-4", "-6"]])
def test_bad_arguments(args):
    assert_usage_error("tcptop", *args)
