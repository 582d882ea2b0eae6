"""syscount cross-checked against a workload that makes a known number of syscalls."""
import json
import os
import signal

import pytest

from helpers import Running, run_bpfsight
from workload import Gated

pytestmark = pytest.mark.bpf

CALLS, FAILS = 20000, 3000
# CALLS getppid() (always succeeds) and FAILS fchdir() on a closed fd (always EBADF), and
# nothing else that fails; "done" gives the time the getppid loop took, on CLOCK_MONOTONIC
WORK = f"""
import os, time
t0 = time.monotonic_ns()
for _ in range({CALLS}):
    os.getppid()
loop_ns = time.monotonic_ns() - t0
for _ in range({FAILS}):
    try:
        os.fchdir(65000)
    except OSError:
        pass
result = str(loop_ns)
"""


def traced(*tool_args):
    """Run the workload under `syscount -p PID ...`; returns (rc, stdout, stderr)."""
    with Gated.python(WORK) as work:
        tool = Running("syscount", "-p", work.pid, *tool_args).wait_attached()
        try:
            traced.loop_ns = int(work.run()[0])
        finally:
            result = tool.stop(signal.SIGINT)  # even when the workload failed
        return result


def records(out):
    return [json.loads(line) for line in out.splitlines()]


def test_counts_and_latency_match_the_workload():
    rc, out, err = traced("-L", "--json", "-T", "100")
    assert rc == 0, err
    by_name = {r["syscall"]: r for r in records(out)}
    assert abs(by_name["getppid"]["count"] - CALLS) <= CALLS * 0.01, by_name["getppid"]
    assert by_name["fchdir"]["count"] == FAILS
    # Every getppid lies inside the workload's timed loop (the same CLOCK_MONOTONIC the tool
    # reads at sys_enter and sys_exit): their summed latency is above 0 and never more than
    # the loop took, on any machine (a unit slip of x1000 would break it)
    assert 0 < by_name["getppid"]["total_ns"] <= traced.loop_ns, \
        (by_name["getppid"], traced.loop_ns)


def test_failures_only_counts_exactly_the_failing_calls():
    rc, out, err = traced("-x")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "Tracing syscalls, printing top 10... Ctrl+C to quit."
    header = next(i for i, ln in enumerate(lines) if ln.startswith("SYSCALL"))
    assert lines[header] == "%-22s %8s" % ("SYSCALL", "COUNT")
    counts = {ln.split()[0]: int(ln.split()[1]) for ln in lines[header + 1:] if ln.strip()}
    assert counts["fchdir"] == FAILS
    assert "getppid" not in counts


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x32 numbers are x86_64's")
def test_numbers_past_the_table_are_counted_together():
    """x32 calls (bit 30 set) land in the array's last slot, not nowhere."""
    work = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for nr in (0x40000027, 0x40000066, 5000):  # x32 getpid, x32 getuid, no such syscall
    for _ in range(100):
        libc.syscall(nr)
result = "ok"
"""
    with Gated.python(work) as w:
        tool = Running("syscount", "-p", w.pid, "--json").wait_attached()
        try:
            w.run()
        finally:
            rc, out, err = tool.stop(signal.SIGINT)
    assert rc == 0, err
    by_name = {r["syscall"]: r["count"] for r in records(out)}
    assert by_name["[>=1023]"] == 300, by_name


def test_errno_filter_by_process():
    rc, out, err = traced("-P", "-e", "EBADF", "--json")
    assert rc == 0, err
    (rec,) = records(out)
    assert rec["count"] == FAILS and rec["comm"].startswith("python")


@pytest.mark.parametrize("args", [["-e", "ENOTANERRNO"], ["-i", "0"], ["-T", "x"],
                                  ["-p", "0"], ["-p", "999999999"], ["-c", "/no/such/cgroup"]])
def test_bad_arguments_are_one_line_exit_2(args):
    rc = run_bpfsight("syscount", *args)
    assert rc.returncode == 2
    assert len(rc.stderr.strip().splitlines()) == 1, rc.stderr


def test_list_names_syscalls():
    rc = run_bpfsight("syscount", "-l")
    assert rc.returncode == 0
    names = rc.stdout.split()
    assert {"read", "getppid", "openat", "clone3"} <= set(names)
