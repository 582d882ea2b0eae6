"""killsnoop against the workload's own calls: each kill/tgkill it made, with its signal,
target and result; -x and -s filter in the kernel."""
import signal

import pytest

from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

# A child that ignores SIGUSR1; the workload signals it n times, signals a pid that does not
# exist once (ESRCH), and its own main thread with tgkill once (SIGUSR2, ignored).
WORK = """
import os, signal, subprocess, sys, threading
n = int(sys.argv[1])
child = subprocess.Popen([sys.executable, "-c",
    "import signal, sys; signal.signal(signal.SIGUSR1, signal.SIG_IGN); sys.stdin.read()"],
    stdin=subprocess.PIPE)
import time; time.sleep(0.3)  # the child's handler in place
for _ in range(n):
    os.kill(child.pid, signal.SIGUSR1)
try:
    os.kill(4000000, signal.SIGUSR1)
except ProcessLookupError:
    pass
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR2)
child.stdin.close(); child.wait()
result = f"{child.pid}"
"""


def test_every_signal_the_workload_sent():
    n = 25
    recs, (child,), pid = trace_gated("killsnoop", work=WORK, work_args=[n])
    mine = [r for r in recs if r["pid"] == pid]
    to_child = [r for r in mine if r["tpid"] == int(child)]
    assert len(to_child) == n, mine
    assert {(r["call"], r["signal"], r["ret"]) for r in to_child} == {("kill", "SIGUSR1", 0)}
    missing = [r for r in mine if r["tpid"] == 4000000]
    assert [(r["call"], r["ret"]) for r in missing] == [("kill", -3)]  # -ESRCH
    own = [r for r in mine if r["call"] == "tgkill"]
    assert [(r["signal"], r["tpid"], r["ret"]) for r in own] == [("SIGUSR2", pid, 0)]
    assert len(mine) == n + 2, mine


def test_failed_and_signal_filters():
    recs, _, pid = trace_gated("killsnoop", "-x", work=WORK, work_args=[5])
    assert [(r["tpid"], r["ret"]) for r in recs if r["pid"] == pid] == [(4000000, -3)]
    recs, _, pid = trace_gated("killsnoop", "-s", "USR2", work=WORK, work_args=[5])
    assert [r["signal"] for r in recs if r["pid"] == pid] == ["SIGUSR2"]
    assert int(signal.SIGUSR2) == [r["sig"] for r in recs if r["pid"] == pid][0]


def test_bad_signal_is_usage_error():
    assert "invalid signal" in assert_usage_error("killsnoop", "-s", "NOSUCH")
