"""cpudist cross-checked against the kernel's own CPU-time accounting (schedstat)."""
import json
import signal
import time

import pytest

from helpers import CpuHogs, Running, run_bpfsight
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


def sum_exec_runtime_ns(pid):
    """Field 1 of /proc/PID/schedstat: time on CPU, in ns."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def test_on_cpu_total_matches_schedstat():
    # two hogs compete for the two CPUs, so the burn is cut into many preempted slices
    with CpuHogs(2), Gated.python(BURN) as work:
        tool = Running("cpudist", "-p", work.pid, "-P", "--json").wait_attached()
        try:
            before = sum_exec_runtime_ns(work.pid)
            work.run()
            time.sleep(0.2)  # until it has blocked again, ending its last slice
            after = sum_exec_runtime_ns(work.pid)
        finally:
            rc, out, err = tool.stop(signal.SIGINT)
    assert rc == 0, err
    hists = [json.loads(line) for line in out.splitlines()]
    assert {h["pid"] for h in hists} == {work.pid}
    measured_us = sum(h["total"] for h in hists)
    expected_us = (after - before) / 1000
    assert expected_us > 300_000, "the workload should have burnt CPU"
    assert hists[0]["count"] > 1
    assert abs(measured_us - expected_us) / expected_us < 0.10, (measured_us, expected_us, hists)


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
