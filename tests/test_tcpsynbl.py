"""tcpsynbl cross-checked against a listener the workload never accepts from: with backlog B and
N connects, the accept queue holds min(N, B + 1) connections (the kernel refuses a handshake
only once the queue is *over* B), and each saw the queue at its length so far: 0, 1, 2, ..."""
import pytest

from tcpload import BACKLOG, traced
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf


# unusual backlog values: the histograms are keyed by backlog_max, host-wide
@pytest.mark.parametrize("backlog,connects", [(7, 12), (11, 3)])
def test_backlog_lengths_seen_at_each_handshake(backlog, connects):
    recs, work, _ = traced("tcpsynbl", work=BACKLOG, work_args=(backlog, connects), by_pid=False)
    mine = [r for r in recs if r["backlog_max"] == backlog]
    assert len(mine) == 1, recs
    h = mine[0]
    queued = min(connects, backlog + 1)
    assert work["queued"] == queued, work  # the kernel's own accept-queue length agrees
    assert h["count"] == queued, h
    assert h["total"] == sum(range(queued)), h  # lengths 0 .. queued-1, exactly
    assert h["buckets"][-1]["low"] <= queued - 1 <= h["buckets"][-1]["high"], h


@pytest.mark.parametrize("args", [["0"], ["-4", "-6"], ["1", "x"]])
def test_bad_arguments(args):
    assert_usage_error("tcpsynbl", *args)
