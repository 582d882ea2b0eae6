"""filetop cross-checked against a workload that writes and reads back a known number of bytes
of a unique file, and counts its own calls."""
import math
import time

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
    # every call and byte, summed over the intervals (wherever their boundaries fell): exact
    assert got["wbytes"] == wbytes and got["rbytes"] == rbytes, got
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
    t0 = time.monotonic()
    rows, _, _ = trace_gated("filetop", "-C", "-r", "1", "-s", "wbytes", "1", work=WORK,
                             work_args=[tmp_path / "top.dat"])
    ran_s = time.monotonic() - t0
    # in the intervals of the work the written file has the most written bytes
    assert any(r["name"] == "top.dat" for r in rows)
    # at most one row per interval: the tool ran under ran_s seconds, so it printed at most
    # floor(ran_s) 1-second intervals plus the one cut short by Ctrl-C, however long this
    # machine took to start it and run the work
    assert len(rows) <= math.floor(ran_s) + 1, (rows, ran_s)


@pytest.mark.parametrize("args", [["0"], ["-s", "size"], ["-r", "0"], ["-p", "4194303"]])
def test_bad_arguments(args):
    assert_usage_error("filetop", *args)
