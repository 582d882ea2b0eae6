import json

import pytest

from helpers import Running, run_bpfsight
from workload import Gated

pytestmark = pytest.mark.bpf

K_FIONREAD, K_GETFLAGS = 500, 40
FS_IOC_GETFLAGS = 0x80086601

# FIONREAD on a pipe (a legacy 'T' command: no _IOC direction or size) and FS_IOC_GETFLAGS on
# a file (_IOR('f', 1, long)); the workload counts the calls that failed.
WORK = f"""
import array, fcntl, os
r, w = os.pipe()
os.write(w, b"abc")
buf = array.array("i", [0])
for _ in range({K_FIONREAD}):
    fcntl.ioctl(r, 0x541B, buf)
fd = os.open(sys.argv[1], os.O_RDONLY)
failed = 0
for _ in range({K_GETFLAGS}):
    try:
        fcntl.ioctl(fd, {FS_IOC_GETFLAGS:#x}, bytearray(8))
    except OSError:
        failed += 1
result = f"{{buf[0]}} {{failed}}"
"""


def test_exact_counts_and_decoded_commands(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with Gated.python(WORK, target) as wl:
        tool = Running("ioctllat", "-p", wl.pid, "-P", "--json").wait_attached()
        pending, failed = map(int, wl.run())
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert pending == 3
    recs = {r["cmd"]: r for r in map(json.loads, out.splitlines())}
    fionread = recs[0x541B]
    assert fionread["count"] == K_FIONREAD
    assert (fionread["name"], fionread["dir"], fionread["type"], fionread["nr"],
            fionread["size"]) == ("FIONREAD", "NONE", ord("T"), 27, 0)
    assert fionread["errors"] == 0 and fionread["pid"] == wl.pid
    getflags = recs[FS_IOC_GETFLAGS]
    assert getflags["count"] == K_GETFLAGS
    assert (getflags["dir"], getflags["type"], getflags["nr"], getflags["size"]) == \
        ("R", ord("f"), 1, 8)
    assert getflags["errors"] == failed


@pytest.mark.parametrize("argv", [["-C", "NOSUCHCMD"], ["-C", "0x1ffffffff"], ["0"],
                                  ["-p", "999999999"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("ioctllat", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
