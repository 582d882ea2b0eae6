"""solisten against the workload's own listen() calls: address, port, protocol, backlog and
result of each, -4/-6 filtered in the kernel."""
import pytest

from toolrun import trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import socket
v4 = socket.socket(); v4.bind(("127.0.0.1", 0)); v4.listen(7)
v6 = socket.socket(socket.AF_INET6); v6.bind(("::1", 0)); v6.listen(3)
udp = socket.socket(type=socket.SOCK_DGRAM)
try:
    udp.listen(1)
except OSError as exc:
    failed = exc.errno
result = f"{v4.getsockname()[1]} {v6.getsockname()[1]} {failed}"
"""


def test_each_listen_with_its_address_and_backlog():
    recs, (p4, p6, err), pid = trace_gated("solisten", work=WORK)
    got = [(r["proto"], r["addr"], r["port"], r["backlog"], r["ret"])
           for r in recs if r["pid"] == pid]
    assert got == [("TCPv4", "127.0.0.1", int(p4), 7, 0), ("TCPv6", "::1", int(p6), 3, 0),
                   ("UDPv4", "0.0.0.0", 0, 1, -int(err))], got


def test_family_filter():
    recs, (_, p6, _), pid = trace_gated("solisten", "-6", work=WORK)
    assert [(r["proto"], r["port"]) for r in recs if r["pid"] == pid] == [("TCPv6", int(p6))]
