"""vfscount against the workload of tests/test_vfsstat.py (known writes, fsyncs and creating
opens, by -p): each count under the VFS function its syscalls enter."""
import pytest

from test_vfsstat import CREATES, FSYNCS, WORK, WRITES
from toolrun import trace_gated

pytestmark = pytest.mark.bpf


def test_counts_match_the_workload(tmp_path):
    (rec,), _, _ = trace_gated("vfscount", work=WORK, work_args=[tmp_path])
    got = rec["counts"]
    assert rec["approx"]
    assert WRITES <= got["write"] <= WRITES + 6, got  # + the gate's own "done" line
    assert got["fsync"] == FSYNCS and got["create"] == CREATES + 1, got
    assert got["open"] == CREATES + 2, got
