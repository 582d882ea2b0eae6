"""runqlat cross-checked against the kernel's own schedstat accounting."""
import json
import signal
import subprocess
import sys
import time

import pytest

from helpers import CpuHogs, Running, schedstat

pytestmark = pytest.mark.bpf


def run_delay_ns(pid):
    return schedstat(pid)[1]


def switch_ins(pid):
    return schedstat(pid)[2]


def test_every_wait_counts_also_for_tasks_older_than_the_tool():
    """A process asleep when the tool starts, waking every 0.2 s: one wait per switch-in, the
    first one included (a task's baseline is taken when it first gets the CPU)."""
    target = subprocess.Popen([sys.executable, "-c",
                               "import time\nwhile True: time.sleep(0.2)"])
    try:
        time.sleep(0.3)
        tool = Running("runqlat", "-p", target.pid, "--json").wait_attached()
        before = switch_ins(target.pid)
        time.sleep(2)
        after = switch_ins(target.pid)
        rc, out, err = tool.stop(signal.SIGINT)
    finally:
        target.kill()
        target.wait()
    assert rc == 0, err
    waits = sum(json.loads(line)["count"] for line in out.splitlines())
    assert after - before >= 8
    # the tool's window holds this one and a little more (up to its last read, after SIGINT)
    assert after - before <= waits <= after - before + 2, (waits, after - before)


def test_runqueue_time_matches_schedstat():
    target = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with CpuHogs(2):
            tool = Running("runqlat", "-p", target.pid, "--json").wait_attached()
            before = run_delay_ns(target.pid)
            time.sleep(3)
            rc, out, err = tool.stop(signal.SIGINT)
            # after the tool's last map read, which the hogs can delay by a few hundred ms
            # (it imports numpy then): the tool's window lies within this one
            after = run_delay_ns(target.pid)
    finally:
        target.kill()
        target.wait()
    assert rc == 0, err
    hists = [json.loads(line) for line in out.splitlines()]
    measured_us = sum(h["total"] for h in hists)
    expected_us = (after - before) / 1000
    assert expected_us > 200_000, "the target should have waited for a CPU"
    assert abs(measured_us - expected_us) / expected_us < 0.10, (measured_us, expected_us)


def test_per_process_histograms_are_labelled():
    with CpuHogs(3) as hogs:
        tool = Running("runqlat", "-P", "--json").wait_attached()
        time.sleep(1)
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
    from bpfsight.report.keyed import comm_hist_dtype
    from bpfsight.tools.runqlat import size_maps
    from bpfsight.target import apply_target

    target = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        spec = open_spec("runqlat")
        apply_target(spec, target.pid)
        disable_programs(spec, "runqlat_delay")
        select_hooks(spec, "runqlat")
        size_maps(spec)
        assert spec.programs["runqlat_switch"].autoload  # tp_btf, task storage
        with CpuHogs(2), spec.load() as obj:
            obj.attach_all()
            before = run_delay_ns(target.pid)
            time.sleep(3)
            after = run_delay_ns(target.pid)
            _, values = obj.map("hists", key="<u4", value=comm_hist_dtype()).read_all()
    finally:
        target.kill()
        target.wait()
    measured_us = int(values["h"]["total"].sum())
    expected_us = (after - before) / 1000
    assert expected_us > 200_000, "the target should have waited for a CPU"
    assert abs(measured_us - expected_us) / expected_us < 0.10, (measured_us, expected_us)
