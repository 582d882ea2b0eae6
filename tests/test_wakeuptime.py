"""wakeuptime against the pinger of tests/profile_workloads.py: its reader thread blocks N
times on a pipe, each time for at least MS ms by construction (the pinger waits until the
reader sleeps, then sleeps MS before writing); the time is summed under the pinger's stack,
which goes through write() and pipe_write."""
import json

import pytest

from helpers import Running
from profile_workloads import PING, build
from toolrun import assert_usage_error
from workload import Gated

pytestmark = pytest.mark.bpf

N, MS = 10, 30


def test_blocked_time_under_the_wakers_stack(tmp_path):
    with Gated([build(PING, tmp_path, "pinger"), str(N), str(MS)]) as w:
        tool = Running("wakeuptime", "-p", w.pid, "--json", "-m", "1000").wait_attached()
        w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    mine = [r for r in recs if r.get("comm") == "pinger" and r.get("target") == "reader"]
    assert N - 1 <= sum(r["blocks"] for r in mine) <= N, recs
    # each block lasted at least MS by construction (the first may have begun before attach)
    assert sum(r["value"] for r in mine) >= (N - 1) * MS * 1000, mine
    assert all(any("pipe_write" in f for f in r["kernel_stack"]) for r in mine), mine
    # the user stack is walked by frame pointers from inside libc's write(), which keeps none:
    # its caller (wake_reader) is skipped, main is found
    assert any(r["user_stack"][:1] == ["write"] and "main" in r["user_stack"] for r in mine)


def test_bad_input():
    assert_usage_error("wakeuptime", "-m", "10", "-M", "5")
