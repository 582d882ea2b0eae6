"""execsnoop must see every child the test spawns, with its exact argv."""
import json
import subprocess
import uuid

import pytest

from helpers import Running

pytestmark = pytest.mark.bpf


def test_sees_every_child_with_exact_argv():
    tag = uuid.uuid4().hex
    tool = Running("execsnoop", "--json").wait_attached()
    children = []
    for i in range(25):
        p = subprocess.Popen(["/bin/echo", tag, str(i), "arg with space"], stdout=subprocess.DEVNULL)
        p.wait()
        children.append(p.pid)
    rc, out, err = tool.stop()
    assert rc == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    mine = {e["pid"]: e for e in events if tag in e["argv"]}
    assert set(mine) == set(children)
    for i, pid in enumerate(children):
        assert mine[pid]["argv"] == ["/bin/echo", tag, str(i), "arg with space"]
        assert mine[pid]["ret"] == 0 and mine[pid]["comm"] == "echo"


def test_failed_exec_shown_only_with_x():
    tag = "/nonexistent-" + uuid.uuid4().hex
    plain = Running("execsnoop", "--json").wait_attached()
    failing = Running("execsnoop", "-x", "--json").wait_attached()
    subprocess.run(["sh", "-c", f"exec {tag} 2>/dev/null"])
    _, out_plain, _ = plain.stop()
    _, out_fail, _ = failing.stop()
    execs_of = lambda out: [json.loads(line) for line in out.splitlines()  # noqa: E731
                            if json.loads(line)["argv"][:1] == [tag]]
    assert not execs_of(out_plain)
    rets = [e["ret"] for e in execs_of(out_fail)]
    assert rets and all(r == -2 for r in rets)  # -ENOENT


def test_terminal_columns_and_quote():
    tag = uuid.uuid4().hex
    tool = Running("execsnoop", "-q", "-U").wait_attached()
    subprocess.run(["/bin/true", tag])
    rc, out, _ = tool.stop()
    lines = out.splitlines()
    assert lines[0].split() == ["UID", "PCOMM", "PID", "PPID", "RET", "ARGS"]
    row = next(line for line in lines if tag in line)
    assert row.split()[1] == "true" and f'"{tag}"' in row


def test_max_args_truncates_with_ellipsis():
    tag = uuid.uuid4().hex
    tool = Running("execsnoop", "--max-args", "3").wait_attached()
    subprocess.run(["/bin/true", tag, "b", "c", "d", "e"])
    _, out, _ = tool.stop()
    row = next(line for line in out.splitlines() if tag in line)
    assert row.endswith(f"/bin/true {tag} b ...")
