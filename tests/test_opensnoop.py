"""opensnoop cross-checked against a workload that opens a unique path a known number of times
and fails known opens with errnos it catches itself."""
import errno
import os

import pytest

from helpers import Running
from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

OPENS = 37
# OPENS creating opens of a unique file, then one of a missing file (ENOENT) and one that opens
# a directory for writing (EISDIR); the workload reports the errnos it got.
WORK = f"""
import os
good, missing, directory = sys.argv[1:4]
for _ in range({OPENS}):
    os.close(os.open(good, os.O_WRONLY | os.O_CREAT, 0o640))
errs = []
for path in (missing, directory):
    try:
        os.open(path, os.O_WRONLY)
    except OSError as exc:
        errs.append(str(exc.errno))
result = " ".join(errs)
"""


@pytest.fixture
def paths(tmp_path):
    good = tmp_path / "opensnoop-target"
    return str(good), str(tmp_path / "no-such-file"), str(tmp_path)


def test_exact_opens_and_errnos(paths):
    events, errs, pid = trace_gated("opensnoop", work=WORK, work_args=paths)
    good, missing, directory = paths
    assert [int(e) for e in errs] == [errno.ENOENT, errno.EISDIR]
    ok = [e for e in events if e["path"] == good]
    assert len(ok) == OPENS
    assert all(e["fd"] >= 0 and e["err"] == 0 and e["pid"] == pid for e in ok)
    assert all(e["flags"] & os.O_ACCMODE == os.O_WRONLY and e["flags"] & os.O_CREAT for e in ok)
    assert all(e["mode"] == 0o640 for e in ok)
    failed = {e["path"]: e for e in events if e["err"]}
    assert failed[missing]["err"] == errno.ENOENT and failed[missing]["fd"] == -1
    assert failed[directory]["err"] == errno.EISDIR
    assert len([e for e in events if e["path"] in (missing, directory)]) == 2


def test_failed_only(paths):
    events, errs, _ = trace_gated("opensnoop", "-x", work=WORK, work_args=paths)
    assert not [e for e in events if e["path"] == paths[0]]
    assert sorted(e["err"] for e in events if e["path"] in paths[1:]) == [errno.ENOENT,
                                                                         errno.EISDIR]
    assert all(e["err"] for e in events)


def test_flag_filter(paths):
    """-f O_CREAT keeps the creating opens only."""
    events, _, _ = trace_gated("opensnoop", "-f", "O_CREAT", work=WORK, work_args=paths)
    assert len([e for e in events if e["path"] == paths[0]]) == OPENS
    assert not [e for e in events if e["path"] in paths[1:]]


@pytest.mark.parametrize("args", [["-f", "O_BOGUS"], ["-d", "0"], ["-p", "4194303"]])
def test_bad_arguments(args):
    assert_usage_error("opensnoop", *args)


def test_terminal_columns(tmp_path):
    path = tmp_path / "columns-target"
    tool = Running("opensnoop", "-e", "-U").wait_attached()
    with open(path, "w"):
        pass
    rc, out, _ = tool.stop()
    lines = out.splitlines()
    assert lines[0].split() == ["UID", "PID", "COMM", "FD", "ERR", "FLAGS", "MODE", "PATH"]
    row = next(line for line in lines if line.endswith(str(path))).split()
    assert row[0] == "0" and row[1] == str(os.getpid()) and row[4] == "0"
    assert int(row[5], 8) & os.O_CREAT and row[6] == "0666"
