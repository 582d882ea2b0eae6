"""tcpconnlat is tcpconnect --latency: each loopback connect with a latency inside the
workload's own timing of its connect() call."""
import pytest

from tcpload import sessions

pytestmark = pytest.mark.bpf

N = 20


def test_each_connect_with_its_latency():
    recs, work, pid = sessions("tcpconnlat", n=N)
    assert len(recs) == N, recs
    for r in recs:
        t0, t1 = work["times"][str(r["lport"])][:2]
        assert 0 < r["lat_ms"] <= (t1 - t0) / 1e6 + 1e-9, (r, t1 - t0)
