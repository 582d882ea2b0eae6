"""cpudist cross-checked against the kernel's own CPU-time accounting (schedstat)."""
import json
import os
import signal

import pytest

from helpers import CpuHogs, Running, run_bpfsight, schedstat, wait_blocked
from workload import Gated

pytestmark = pytest.mark.bpf

# Burn 0.5 s of CPU (however busy the machine), then block: every slice of the burn ends while
# the tool is attached.
BURN = """
import time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
result = "ok"
"""


def steal_ns():
    """Time the hypervisor ran something else on this VM's vCPUs, all CPUs, /proc/stat."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) * 10**9 // os.sysconf("SC_CLK_TCK")


def test_on_cpu_total_matches_schedstat():
    # as many hogs as CPUs compete with the burn, so it is cut into many preempted slices
    with CpuHogs(os.cpu_count()), Gated.python(BURN) as work:
        # blocked on stdin (no slice in progress) from before the tool starts until "go",
        # and again from when it blocks after "done": its slices all lie in the window
        wait_blocked(work.pid)
        tool = Running("cpudist", "-p", work.pid, "-P", "--json").wait_attached()
        try:
            before, steal0 = schedstat(work.pid), steal_ns()
            work.run()
            wait_blocked(work.pid)
            after, steal1 = schedstat(work.pid), steal_ns()
        finally:
            rc, out, err = tool.stop(signal.SIGINT)
    assert rc == 0, err
    hists = [json.loads(line) for line in out.splitlines()]
    assert {h["pid"] for h in hists} == {work.pid}
    measured_us = sum(h["total"] for h in hists)
    expected_us = (after[0] - before[0]) / 1000
    slices = sum(h["count"] for h in hists)
    assert expected_us >= 500_000, "the workload burns 0.5 s of CPU"
    switch_ins = after[2] - before[2]
    # one slice per switch-in (schedstat's pcount counts arrivals), every one of them ended
    # inside the window: each switch-out records the scheduler's own figure for its stint, so
    # a switch-in the program did not see (about 1 in 100 here; before, its slice was lost
    # with its time) loses nothing
    assert slices == switch_ins, (slices, switch_ins)
    # The tool takes each slice from the run queue's clock (sched_info.last_arrival to the
    # switch-out), the kernel's sum_exec_runtime from its task clock over the same span: they
    # differ by a few µs of scheduler code and the 1 µs truncation per slice (20 µs allowed),
    # and the task clock leaves out the time the hypervisor stole from the vCPU while the task
    # was on it (paravirt steal accounting): at most all the steal /proc/stat saw on any CPU in
    # the window, +1 tick per CPU of rounding. Measured: within 0.07% in 12 runs.
    steal_us = (steal1 - steal0) / 1000 + os.cpu_count() * 10**6 / os.sysconf("SC_CLK_TCK")
    assert measured_us <= expected_us + steal_us + 20 * slices, \
        (measured_us, expected_us, slices, steal_us, hists)
    assert measured_us >= expected_us - 20 * slices, (measured_us, expected_us, slices)


def test_off_cpu_sees_the_blocked_wait():
    with Gated.python("import time; time.sleep(0.5); result = 'ok'") as work:
        tool = Running("cpudist", "-O", "-m", "-p", work.pid, "--json").wait_attached()
        try:
            work.run()
        finally:
            rc, out, err = tool.stop(signal.SIGINT)
    assert rc == 0, err
    (hist,) = [json.loads(line) for line in out.splitlines()]
    assert hist["unit"] == "msecs"
    # the 0.5 s sleep is one off-CPU slice in the 256-511 ms or 512-1023 ms bucket
    assert any(b["low"] >= 256 and b["count"] for b in hist["buckets"]), hist


def test_terminal_output_is_bcc_shaped():
    rc = run_bpfsight("cpudist", "-T", "1", "1")
    assert rc.returncode == 0, rc.stderr
    lines = rc.stdout.splitlines()
    assert lines[0] == "Tracing on-CPU time... Hit Ctrl-C to end."
    assert any(ln.strip().startswith("usecs") and "distribution" in ln for ln in lines)


@pytest.mark.parametrize("args", [["0"], ["1", "x"], ["-p", "999999999"], ["--bogus"]])
def test_bad_arguments_are_one_line_exit_2(args):
    rc = run_bpfsight("cpudist", *args)
    assert rc.returncode == 2
    assert len(rc.stderr.strip().splitlines()) == 1, rc.stderr
