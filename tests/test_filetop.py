"""filetop cross-checked against a workload that writes and reads back a known number of bytes
of a unique file, and counts its own calls."""
import pytest

from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

# Writes CHUNKS chunks plus an odd tail through write() and pwrite(), then reads the file back
# with read() and readv(); reports (write calls, bytes written, read calls, bytes read). The fd
# stays open so filetop can resolve the full path.
CHUNKS = 300
WORK = f"""
import os
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
wcalls = wbytes = rcalls = rbytes = 0
for i in range({CHUNKS}):
    wbytes += os.write(fd, b"w" * 4096) if i % 2 else os.pwrite(fd, b"p" * 4096, wbytes)
    wcalls += 1
os.lseek(fd, wbytes, 0)
wbytes += os.write(fd, b"t" * 777); wcalls += 1
os.lseek(fd, 0, 0)
while True:
    n = os.read(fd, 10000) if rcalls % 2 else os.readv(fd, [bytearray(3000), bytearray(5000)])
    rcalls += 1
    if not n:
        break
    rbytes += n if isinstance(n, int) else len(n)
result = f"{{wcalls}} {{wbytes}} {{rcalls}} {{rbytes}}"
"""


def totals(rows, name):
    mine = [r for r in rows if r["name"] == name]
    return mine, {k: sum(r[k] for r in mine) for k in ("reads", "writes", "rbytes", "wbytes")}


def test_bytes_and_calls_match_the_workload(tmp_path):
    path = tmp_path / "filetop-target.dat"
    rows, result, pid = trace_gated("filetop", "-C", "-r", "1000", "1", work=WORK,
                                    work_args=[path])
    wcalls, wbytes, rcalls, rbytes = map(int, result)
    mine, got = totals(rows, path.name)
    assert wbytes == CHUNKS * 4096 + 777 and rbytes == wbytes
    assert abs(got["wbytes"] - wbytes) <= wbytes * 0.01, got
    assert abs(got["rbytes"] - rbytes) <= rbytes * 0.01, got
    assert got["writes"] == wcalls and got["reads"] == rcalls
    assert all(r["tid"] == pid and r["type"] == "R" and r["file"] == str(path) for r in mine)
    # stdin and stdout are pipes: only with -a
    assert all(r["type"] == "R" for r in rows)


def test_all_files_adds_pipes(tmp_path):
    rows, _, _ = trace_gated("filetop", "-C", "-a", "1", work=WORK,
                             work_args=[tmp_path / "x.dat"])
    pipes = [r for r in rows if r["type"] == "O" and r["file"].startswith("pipe:")]
    assert pipes and sum(r["writes"] for r in pipes) >= 1  # the workload's "done" line


def test_sort_and_maxrows(tmp_path):
    rows, _, _ = trace_gated("filetop", "-C", "-r", "1", "-s", "wbytes", "1", work=WORK,
                             work_args=[tmp_path / "top.dat"])
    # one row per interval, and in the interval of the work it is the written file
    assert any(r["name"] == "top.dat" for r in rows)
    assert len(rows) <= 4


@pytest.mark.parametrize("args", [["0"], ["-s", "size"], ["-r", "0"], ["-p", "4194303"]])
def test_bad_arguments(args):
    assert_usage_error("filetop", *args)
