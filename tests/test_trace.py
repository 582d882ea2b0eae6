"""trace against the workload's own calls: a kernel-evaluated filter on a libc function's
argument keeps exactly the calls that pass it, a return value equals what the workload got,
and a tracepoint's string field is the path the workload opened; -M stops after N events."""

import pytest

from helpers import run_bpfsight
from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

SIZES = [50, 150, 300, 99, 1000, 101]
WORK = f"""
import ctypes, os
libc = ctypes.CDLL("libc.so.6")
fd = os.open("/dev/null", os.O_WRONLY)
for n in {SIZES}:
    libc.write(fd, b"x" * n, n)
os.close(os.open("/tmp/bpfsight-trace-" + str(os.getpid()), os.O_CREAT | os.O_WRONLY, 0o600))
os.unlink("/tmp/bpfsight-trace-" + str(os.getpid()))
result = str(libc.getppid())
"""


def test_filter_retval_and_string_field():
    recs, (ppid,), pid = trace_gated(
        "trace", 'p:c:write (arg3 > 100) "size %d", arg3', 'r:c:getppid "%d", retval',
        't:syscalls:sys_enter_openat "%s", args->filename', work=WORK)
    msgs = [(r["func"], r["msg"]) for r in recs if r["pid"] == pid]
    assert [m for f, m in msgs if f == "c:write"] == \
        [f"size {n}" for n in SIZES if n > 100]
    assert [m for f, m in msgs if f == "c:getppid"] == [ppid]
    assert f"/tmp/bpfsight-trace-{pid}" in [m for f, m in msgs
                                            if f == "syscalls:sys_enter_openat"]


def test_max_events_stops_the_trace():
    res = run_bpfsight("trace", "-M", "3", "t:sched:sched_switch", timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [ln for ln in res.stdout.splitlines()[1:] if ln.strip()]
    assert len(rows) == 3, res.stdout


def test_bad_probes():
    assert "kprobes" in assert_usage_error("trace", "do_sys_open")
    assert "conversions" in assert_usage_error("trace", 'p:c:write "%d %d", arg1')
    assert "field" in assert_usage_error("trace", 't:syscalls:sys_enter_openat "%d", args->nope')
    assert "retval" in assert_usage_error("trace", 'p:c:write "%d", retval')
    assert "filter" in assert_usage_error("trace", 'p:c:write (arg1 ~ 3)')
