"""Run a tool around a gated workload (tests/workload.py) and read its NDJSON: what the process
and file tool tests (exitsnoop, oomkill, opensnoop, filetop, fileslower, vfsstat) share."""
import json

from helpers import Running, assert_released, bpf_objects_of, run_bpfsight
from workload import Gated


def records(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def trace_gated(tool, *tool_args, work, work_args=(), by_pid=True):
    """Start the workload, attach `tool -p PID ... --json` to it, let it work, stop the tool
    while the workload still lives (so /proc/PID is readable for path lookups).
    Returns (records, the workload's "done" words, its pid); checks the tool exited cleanly
    and left nothing in the kernel."""
    with Gated.python(work, *work_args) as w:
        target = ["-p", w.pid] if by_pid else []
        tool_proc = Running(tool, *target, *tool_args, "--json").wait_attached()
        held = bpf_objects_of(tool_proc.proc.pid)
        try:
            result = w.run()
        finally:  # a workload that fails must not leave the tool running
            rc, out, err = tool_proc.stop()
        pid = w.pid
    assert rc == 0, err
    assert "Traceback" not in err, err
    assert_released(held)
    return records(out), result, pid


def assert_usage_error(*args):
    """Bad input: exit 2, one line on stderr, no traceback."""
    res = run_bpfsight(*args)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return res.stderr
