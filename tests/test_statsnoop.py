"""statsnoop against the workload's own stat calls: each path with its result; -x keeps the
failed ones, in the kernel."""
import pytest

from toolrun import trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import os, tempfile
fd, path = tempfile.mkstemp(); os.close(fd)
for _ in range(3):
    os.stat(path)
os.lstat(path)
for _ in range(2):
    try:
        os.stat(path + ".missing")
    except FileNotFoundError:
        pass
os.statvfs(path)
os.unlink(path)
result = path
"""


def test_each_stat_of_the_workload_with_its_result():
    recs, (path,), pid = trace_gated("statsnoop", work=WORK)
    mine = [(r["path"], r["ret"]) for r in recs if r["pid"] == pid and path in r["path"]]
    assert mine == [(path, 0)] * 4 + [(path + ".missing", -2)] * 2 + [(path, 0)], mine


def test_failed_only():
    recs, (path,), pid = trace_gated("statsnoop", "-x", work=WORK)
    mine = [(r["path"], r["err"]) for r in recs if r["pid"] == pid and path in r["path"]]
    assert mine == [(path + ".missing", 2)] * 2, mine
