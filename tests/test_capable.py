"""capable against the workload's own privileged calls: chown and a negative nice as root
(granted), and chown from a child that gave up root (denied)."""
import pytest

from toolrun import trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import os, tempfile
fd, path = tempfile.mkstemp(); os.close(fd)
os.chown(path, 1, 1)        # CAP_CHOWN, granted
os.nice(-1)                 # CAP_SYS_NICE, granted
child = os.fork()
if child == 0:
    os.setgid(65534); os.setuid(65534)
    try:
        os.chown(path, 2, 2)  # CAP_CHOWN, denied
    except PermissionError:
        pass
    os._exit(0)
os.waitpid(child, 0)
os.unlink(path)
result = str(child)
"""


def test_granted_and_denied_checks_of_the_workload():
    recs, (child,), pid = trace_gated("capable", work=WORK, by_pid=False)
    mine = {(r["name"], r["verdict"]) for r in recs if r["pid"] == pid}
    assert {("CAP_CHOWN", "granted"), ("CAP_SYS_NICE", "granted")} <= mine, mine
    theirs = {(r["name"], r["verdict"]) for r in recs if r["pid"] == int(child)}
    assert ("CAP_CHOWN", "denied") in theirs, theirs


def test_denied_only():
    recs, (child,), pid = trace_gated("capable", "-x", work=WORK, by_pid=False)
    assert all(r["verdict"] == "denied" for r in recs), recs[:3]
    assert any(r["pid"] == int(child) and r["name"] == "CAP_CHOWN" for r in recs)
