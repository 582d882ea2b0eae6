"""offwaketime is offcputime with the wakers' stacks always on: the pipe reader's blocks are
named by the pinger that woke them, the same figures test_offcputime checks with --wakers."""
import json

import pytest

from helpers import Running
from test_offcputime import N, PING, build
from workload import Gated

pytestmark = pytest.mark.bpf


def test_blocks_come_with_the_wakers_stacks(tmp_path):
    with Gated([build(PING, tmp_path, "pinger"), str(N), "20"]) as w:
        tool = Running("offwaketime", "-p", w.pid, "--json", "-m", "1000").wait_attached()
        (tid,) = w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    woken = [r for r in recs if r.get("pid") == int(tid) and r.get("waker")
             and r["waker"]["comm"] == "pinger"]
    assert N - 1 <= sum(r["blocks"] for r in woken) <= N, woken
    assert all(any("pipe_write" in f for f in r["waker"]["kernel_stack"]) for r in woken)
