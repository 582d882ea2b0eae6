"""The Python API (`bpfsight.attach`): the tools' own definitions run in-process, records out,
checked against the kernel's schedstat and the workload's own counts; nothing left attached."""
import os
import time

import pytest

import bpfsight
from bpfsight.errors import UsageError
from helpers import assert_released, bpf_objects_of, schedstat, wait_blocked
from workload import Gated

pytestmark = pytest.mark.bpf

SLEEPS = 10
SLEEPER = f"import time\nfor _ in range({SLEEPS}): time.sleep(0.01)\nresult = 'ok'"


def test_runqlat_records_are_the_waits_schedstat_counts():
    """As the CLI's test: a gated sleeper, blocked whenever schedstat is read, so its waits all
    fall inside the window and the counts compare exactly."""
    with Gated.python(SLEEPER) as w:
        wait_blocked(w.pid)
        before = schedstat(w.pid)
        with bpfsight.attach("runqlat", pid=w.pid) as t:
            held = bpf_objects_of(os.getpid())
            w.run()
            wait_blocked(w.pid)
            after = schedstat(w.pid)
            records = t.collect()
    assert_released(held)
    switch_ins = after[2] - before[2]
    delay_us = (after[1] - before[1]) // 1000
    assert sum(r["count"] for r in records) == switch_ins >= SLEEPS + 1, (records, switch_ins)
    total = sum(r["total"] for r in records)
    assert delay_us - switch_ins <= total <= delay_us, (total, delay_us)


def test_syscount_counts_the_syscalls_the_workload_made():
    """Options by keyword: per-syscall counts of one process, with latency; collect() gives
    what happened since the previous call."""
    n = 3000
    work = f"import os\nfor _ in range({n}): os.getppid()\nresult = {n}"
    with Gated.python(work) as w, bpfsight.attach("syscount", pid=w.pid, latency=True) as t:
        t.collect()  # anything before the work
        (made,) = w.run()
        records = {r["syscall"]: r for r in t.collect()}
    assert records["getppid"]["count"] == int(made) == n
    assert records["getppid"]["total_ns"] > 0


def test_to_pandas_or_a_clear_error():
    import importlib.util
    with bpfsight.attach("biolatency") as t:
        if importlib.util.find_spec("pandas") is None:
            with pytest.raises(UsageError, match="needs pandas"):
                t.to_pandas()
        else:
            frame = t.to_pandas([{"disk": "a", "count": 1}, {"disk": "b", "count": 2}])
            assert frame["count"].sum() == 3


def test_bad_names_are_usage_errors():
    with pytest.raises(UsageError, match="no option 'nosuch'.*milliseconds"):
        bpfsight.attach("runqlat", nosuch=1)
    with pytest.raises(UsageError, match="no tool named"):
        bpfsight.attach("nosuchtool")
    with pytest.raises(UsageError, match="not available from Python yet"):
        bpfsight.attach("lockstat")
    assert {"biolatency", "runqlat", "cpudist", "syscount", "execsnoop", "opensnoop"} <= \
        set(bpfsight.attachable())


def test_execsnoop_streams_one_record_per_exec():
    """A streaming tool from Python: records() gives the ring's records as they come, decoded
    by the tool's own definition; one per /bin/true the workload ran."""
    n = 20
    work = ("import subprocess\n"
            f"for _ in range({n}): subprocess.run(['/bin/true'], check=True)\n"
            f"result = {n}")
    with Gated.python(work) as w, bpfsight.attach("execsnoop", ppid=w.pid) as t:
        (ran,) = w.run()
        records, deadline = [], time.monotonic() + 10
        while len(records) < n and time.monotonic() < deadline:
            records += t.records(timeout_s=0.2)
    assert len(records) == int(ran) == n, records[:3]
    assert {r["comm"] for r in records} == {"true"} and {r["ppid"] for r in records} == {w.pid}


def test_the_notebook_example_runs(tmp_path):
    """examples/notebook.ipynb, its code cells run in order as a kernel would run them (no
    jupyter here): the run-queue table lists the hogs started beside it, and execsnoop sees the
    execs made while it streams."""
    import json
    import subprocess
    import sys
    from helpers import CpuHogs
    nb = json.load(open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), "examples", "notebook.ipynb")))
    script = tmp_path / "notebook.py"
    script.write_text("\n\n".join("".join(c["source"]) for c in nb["cells"]
                                   if c["cell_type"] == "code"))
    env = dict(os.environ, BPFSIGHT_NOTEBOOK_SECONDS="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    with CpuHogs(os.cpu_count() + 1) as hogs:  # while runqlat's cell runs
        hog_pids = {str(p.pid) for p in hogs.procs}
        while not lines or not lines[-1].startswith("tracing execs"):
            line = proc.stdout.readline()
            assert line, proc.communicate()[1]
            lines.append(line)
    for _ in range(3):  # inside execsnoop's window, which the line above opened
        subprocess.run(["/bin/true"], check=True)
    out, err = proc.communicate(timeout=60)
    out = "".join(lines) + out
    assert proc.returncode == 0, err
    listed = {line.split()[0] for line in out.splitlines() if line.split()[:1] != ["PID"]}
    assert hog_pids & listed, out
    assert out.count(" true") >= 3 and "execs" in out, out
