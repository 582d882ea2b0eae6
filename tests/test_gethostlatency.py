"""gethostlatency against the workload's own lookups: one record per call, each no longer than
the call took by the workload's own clock. Only names /etc/hosts answers (localhost) and
numeric addresses: nothing is sent to any resolver."""
import pytest

from toolrun import trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import socket, time
took = []
for name in ["localhost"] * 5 + ["127.0.0.1"] * 3:
    t = time.monotonic_ns()
    socket.getaddrinfo(name, 80)
    took.append(time.monotonic_ns() - t)
t = time.monotonic_ns()
socket.gethostbyname("localhost")
took.append(time.monotonic_ns() - t)
result = " ".join(map(str, took))
"""


def test_one_record_per_lookup_each_within_its_call():
    recs, took, pid = trace_gated("gethostlatency", work=WORK)
    mine = [r for r in recs if r["pid"] == pid]
    assert [r["host"] for r in mine] == ["localhost"] * 5 + ["127.0.0.1"] * 3 + ["localhost"]
    # each uprobe-to-uretprobe span lies inside the workload's own timing of that call
    for r, ns in zip(mine, took):
        assert 0 < r["lat_ms"] * 1e6 <= int(ns), (r, ns)
