"""vfsstat cross-checked against a workload that makes a known number of write, fsync and
creating-open syscalls (filtered by its pid, so the busy machine's own I/O stays out)."""
import pytest

from helpers import Running
from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

WRITES, FSYNCS, CREATES = 3000, 7, 40
WORK = f"""
import os
null = os.open("/dev/null", os.O_WRONLY)
for _ in range({WRITES}):
    os.write(null, b"x")
fd = os.open(sys.argv[1] + "/sync.dat", os.O_WRONLY | os.O_CREAT, 0o600)
for _ in range({FSYNCS}):
    os.fsync(fd)
for i in range({CREATES}):
    os.close(os.open(sys.argv[1] + "/c%d" % i, os.O_WRONLY | os.O_CREAT, 0o600))
result = "ok"
"""


def test_counts_match_the_workload(tmp_path):
    ticks, _, _ = trace_gated("vfsstat", "1", work=WORK, work_args=[tmp_path])
    got = {k: sum(t["counts"][k] for t in ticks) for k in ticks[0]["counts"]}
    assert all(t["approx"] for t in ticks)
    # the gate's "done ok" line adds a few writes (print writes "done", " ", "ok", "\n" one by
    # one to a pipe); its reads of stdin began before the tool attached or end after it stops
    assert WRITES <= got["write"] <= WRITES + 6, got
    assert got["fsync"] == FSYNCS
    # every open of the workload: /dev/null, sync.dat (O_CREAT) and the CREATES files
    assert got["open"] == CREATES + 2 and got["create"] == CREATES + 1, got
    assert got["read"] <= 2, got


def test_terminal_columns():
    tool = Running("vfsstat", "1", "1").wait_attached()
    rc, out, err = tool.finish()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Tracing") and "approx: syscalls, not VFS calls" in lines[0]
    assert lines[1].split() == ["TIME", "READ/s", "WRITE/s", "FSYNC/s", "OPEN/s", "CREATE/s"]
    assert lines[2].split()[0].endswith(":") and len(lines[2].split()) == 6


@pytest.mark.parametrize("args", [["0"], ["1", "-2"], ["-p", "4194303"]])
def test_bad_arguments(args):
    assert_usage_error("vfsstat", *args)
