"""exitsnoop cross-checked against the wait(2) statuses the parent itself collects."""
import os
import subprocess
import sys
import time

import pytest

from helpers import Running
from toolrun import assert_usage_error, records

pytestmark = pytest.mark.bpf

# shell one-liners with a known end; `ulimit -c 0` keeps SIGABRT from leaving a core file
COMMANDS = ["exit 0", "exit 3", "exit 42", "kill -TERM $$", "kill -KILL $$",
            "ulimit -c 0; kill -ABRT $$", "sleep 0.3; exit 5"]


def spawn(command):
    """Run `sh -c command` to its end; (pid, wait status, seconds it lived as seen by us)."""
    t0 = time.monotonic()
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", command], os.environ)
    _, status = os.waitpid(pid, 0)
    return pid, status, time.monotonic() - t0


def expected(status):
    if os.WIFSIGNALED(status):
        return {"exit_code": 0, "signal": os.WTERMSIG(status),
                "core_dumped": os.WCOREDUMP(status)}
    return {"exit_code": os.WEXITSTATUS(status), "signal": 0, "core_dumped": False}


def traced(*tool_args, commands=COMMANDS):
    tool = Running("exitsnoop", "--json", *tool_args).wait_attached()
    children = [spawn(c) for c in commands]
    rc, out, err = tool.stop()
    assert rc == 0, err
    return records(out), children


def test_every_child_seen_with_its_code_signal_and_age():
    events, children = traced()
    by_pid = {e["pid"]: e for e in events}
    for pid, status, lived in children:
        e = by_pid[pid]
        assert {k: e[k] for k in ("exit_code", "signal", "core_dumped")} == expected(status)
        assert e["ppid"] == os.getpid() and e["tid"] == pid and e["comm"] == "sh"
        # the task was created after spawn() read its clock and had exited before waitpid()
        # returned; its start_time and the tool's exit stamp are the same monotonic clock, so
        # the age lies within what we saw, exactly (1e-6 s: float rounding)
        assert 0 <= e["age_s"] <= lived + 1e-6, (e, lived)
    slow = by_pid[children[-1][0]]
    assert slow["age_s"] >= 0.3 and slow["exit_code"] == 5  # a sleep never ends early
    assert sum(1 for e in events if e["pid"] in {c[0] for c in children}) == len(children)


def test_failed_only_drops_clean_exits():
    events, children = traced("-x", commands=["exit 0", "exit 7", "kill -TERM $$"])
    pids = {e["pid"] for e in events}
    assert children[0][0] not in pids
    assert {children[1][0], children[2][0]} <= pids


def test_threaded_reports_every_thread():
    work = ("import threading\n"
            "ts = [threading.Thread(target=lambda: None) for _ in range(3)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]")
    for args, exits in (((), 1), (("-T",), 4)):
        tool = Running("exitsnoop", "--json", *args).wait_attached()
        child = subprocess.run([sys.executable, "-c", work])
        rc, out, err = tool.stop()
        assert rc == 0 and child.returncode == 0, err
        mine = [e for e in records(out) if e["ppid"] == os.getpid() and e["comm"] != "sh"]
        pid = {e["pid"] for e in mine if e["tid"] == e["pid"]}
        assert len(pid) == 1, mine
        assert len([e for e in mine if e["pid"] in pid]) == exits, mine


def test_terminal_columns():
    tool = Running("exitsnoop", "-t").wait_attached()
    pid, _, _ = spawn("exit 3")
    rc, out, _ = tool.stop()
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE"]
    row = next(line for line in lines if line.split()[2:3] == [str(pid)])
    assert row.split()[1] == "sh" and row.endswith("code 3")


@pytest.mark.parametrize("args", [["-p", "0"], ["-p", "4194303"], ["--bogus"]])
def test_bad_arguments(args):
    assert_usage_error("exitsnoop", *args)
