"""syncsnoop against the workload's own flush calls, one record each, by call."""
from collections import Counter

import pytest

from toolrun import trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import mmap, os, tempfile
fd, path = tempfile.mkstemp()
os.write(fd, b"x" * 4096)
for _ in range(3):
    os.fsync(fd)
for _ in range(2):
    os.fdatasync(fd)
m = mmap.mmap(fd, 4096)
m[0:1] = b"y"
m.flush()
m.close()
os.sync()
os.close(fd)
os.unlink(path)
result = "3 2 1 1"
"""


def test_each_flush_call_of_the_workload():
    recs, (fsyncs, fdatasyncs, msyncs, syncs), pid = trace_gated("syncsnoop", work=WORK)
    calls = Counter(r["call"] for r in recs if r["pid"] == pid)
    assert calls == Counter(fsync=int(fsyncs), fdatasync=int(fdatasyncs), msync=int(msyncs),
                            sync=int(syncs)), calls
