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


def hogs_runnable_share(readings):
    """Share of the procs_running readings with every pinned hog runnable (at least 2 per
    CPU): at those instants each CPU had at least one task waiting."""
    return sum(n >= 2 * NCPUS for n in readings) / len(readings)


# A sample and a procs_running reading are taken at different instants: where the readings
# saw fewer runnable tasks than the hogs now and then, the samples may see it at other times.
# 0.05 is 5 of every 100 samples, well above one sample of rounding per CPU and interval.
SAMPLING_TOLERANCE = 0.05


def test_queue_length_with_pinned_hogs_matches_procs_running():
    with CpuHogs(2 * NCPUS) as hogs:
        pin(hogs)
        time.sleep(0.2)
        records, readings = measure("-C")
    assert sorted(r["cpu"] for r in records) == sorted(os.sched_getaffinity(0))
    measured = mean_length(records)
    low, _ = waiting_bounds(readings)
    # every CPU is busy, so the low bound is the expected value: (procs_running - NCPUS) / NCPUS
    assert abs(measured - low) < 0.25, (measured, low)
    # two hogs pinned per CPU: each CPU's own queue holds at least one of them whenever both
    # are runnable (they always are: busy loops never block)
    share = hogs_runnable_share(readings)
    assert all(r["mean"] >= share - SAMPLING_TOLERANCE for r in records), (share, records)
    # busy CPUs take every sample: nothing may be filled in as idle
    assert all(r["unsampled"] == 0 for r in records), records


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
        tool = Running("runqlen", "-O", "1", "1").wait_attached()
        readings = sample_procs_running(1.0)
        rc, out, err = tool.finish()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "Sampling run queue length... Hit Ctrl-C to end."
    (occ,) = [ln for ln in lines if ln.startswith("runqocc: ")]
    # with every hog runnable, every CPU has a task waiting: occupancy is that share of time
    expected = 100 * hogs_runnable_share(readings)
    assert float(occ.split()[1].rstrip("%")) >= expected - 100 * SAMPLING_TOLERANCE, \
        (occ, expected)


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


def test_fill_counts_only_idle_time_not_taken():
    """Pure: a CPU's missing samples are its idle seconds x frequency less the idle samples it
    took; busy time is never filled in, however long the interval really was."""
    import numpy as np
    from bpfsight.tools.runqlen import fill_unsampled
    slots = np.zeros((3, 4), dtype="int64")
    slots[0][1] = 99              # busy all interval: every sample taken
    slots[1][0] = 10              # idle, its timer stopped after 10 samples
    slots[2][0], slots[2][1] = 50, 49   # half idle, every sample taken
    idle_taken = np.array([0, 10, 50])
    filled = fill_unsampled(slots, idle_taken, {0: 0.0, 1: 1.0, 2: 0.505}, 99, [0, 1, 2])
    assert filled == {1: 89}
    assert slots.sum(axis=1).tolist() == [99, 99, 99]
