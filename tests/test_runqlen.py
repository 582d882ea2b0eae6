"""runqlen cross-checked against the kernel's count of runnable tasks (/proc/stat
procs_running, the sum of every CPU's rq->nr_running), sampled by the test meanwhile."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import CpuHogs, Running, assert_released, bpf_objects_of, run_bpfsight

pytestmark = pytest.mark.bpf

NCPUS = len(os.sched_getaffinity(0))


# Reads procs_running at a steady rate as a SCHED_FIFO task: it runs the moment its timer
# fires, so when it looks does not depend on how long the run queues are (a normal task gets
# to run, and look, more often when they are short). It counts itself, hence the - 1.
SAMPLER = """
import os, sys, time
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
end = time.monotonic() + float(sys.argv[1])
readings = []
while time.monotonic() < end:
    with open("/proc/stat") as f:
        readings.append(next(int(ln.split()[1]) for ln in f if ln.startswith("procs_running")) - 1)
    time.sleep(0.005)
print(*readings)
"""


def sample_procs_running(seconds):
    """Runnable tasks (the sampler excluded), read every 5 ms for `seconds`."""
    done = subprocess.run([sys.executable, "-c", SAMPLER, str(seconds)], capture_output=True,
                          text=True, check=True)
    return [int(n) for n in done.stdout.split()]


def waiting_bounds(readings):
    """(low, high) for the mean number of tasks waiting per CPU, from procs_running: at most
    NCPUS run, so at least (n - NCPUS) wait; at least one runs, so at most n - 1 wait."""
    low = sum(max(0, n - NCPUS) for n in readings) / len(readings) / NCPUS
    high = sum(max(0, n - 1) for n in readings) / len(readings) / NCPUS
    return low, high


def measure(*tool_args, seconds=2.0):
    """Run runqlen --json while sampling procs_running; returns (records, readings)."""
    tool = Running("runqlen", "--json", *tool_args).wait_attached()
    try:
        readings = sample_procs_running(seconds)
    finally:
        rc, out, err = tool.stop(signal.SIGINT)
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()], readings


def mean_length(records):
    total = sum(r["mean"] * r["samples"] for r in records)
    return total / sum(r["samples"] for r in records)


def pin(hogs):
    """Two hogs per CPU, whatever else runs: every CPU has at least one task waiting."""
    for i, p in enumerate(hogs.procs):
        os.sched_setaffinity(p.pid, {sorted(os.sched_getaffinity(0))[i % NCPUS]})


def test_queue_length_with_pinned_hogs_matches_procs_running():
    with CpuHogs(2 * NCPUS) as hogs:
        pin(hogs)
        time.sleep(0.2)
        records, readings = measure("-C")
    assert sorted(r["cpu"] for r in records) == sorted(os.sched_getaffinity(0))
    measured = mean_length(records)
    low, _ = waiting_bounds(readings)
    # every CPU is busy, so the low bound is the expected value: (procs_running - NCPUS) / NCPUS
    assert measured > 0.8, records
    assert abs(measured - low) < 0.25, (measured, low)
    assert all(r["mean"] >= 0.7 for r in records), records


def test_idle_queue_is_near_zero():
    records, readings = measure()
    measured = mean_length(records)
    low, high = waiting_bounds(readings)
    # on a quiet machine high is ~0; on a shared one the tool stays within the bounds
    assert low - 0.25 <= measured <= high + 0.25, (measured, low, high)
    assert records[0]["samples"] >= 99 * NCPUS  # 99 Hz x 2 s x CPUs, idle ones counted as 0


def test_occupancy_text_output():
    with CpuHogs(2 * NCPUS) as hogs:
        pin(hogs)
        rc, out, err = Running("runqlen", "-O", "1", "1").finish()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "Sampling run queue length... Hit Ctrl-C to end."
    (occ,) = [ln for ln in lines if ln.startswith("runqocc: ")]
    assert float(occ.split()[1].rstrip("%")) > 80, occ


def test_perf_events_released_on_sigterm():
    tool = Running("runqlen", "-C").wait_attached()
    held = bpf_objects_of(tool.proc.pid)
    assert held["prog"], held
    rc, _, err = tool.stop(signal.SIGTERM)
    assert rc == 0 and "Traceback" not in err, err
    assert_released(held)


@pytest.mark.parametrize("args", [["0"], ["-f", "0"], ["-f", "x"], ["1", "-1"]])
def test_bad_arguments_are_one_line_exit_2(args):
    rc = run_bpfsight("runqlen", *args)
    assert rc.returncode == 2
    assert len(rc.stderr.strip().splitlines()) == 1, rc.stderr
