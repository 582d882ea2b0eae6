"""fsslower -t ext4 / ext4slower with threshold 0: every read, write and fsync the workload made
on a file in /tmp (ext4 here), exactly; the same operations on a tmpfs file (/dev/shm) are
not shown; -t tmpfs shows those instead."""
import os

import pytest

from test_fileslower import ALL_WORK
from test_fsdist import fs_type
from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

BOTH = ALL_WORK.replace("sys.argv[1]", "path") .replace("import os\n", "import os, sys\n")
WORK = ("sizes_of = {}\nfor path in sys.argv[1:3]:\n" +
        "\n".join("    " + ln for ln in BOTH.splitlines() if ln.strip()) +
        "\n    sizes_of[path] = result\nresult = sizes_of[sys.argv[1]]\n")


def operations(tool_args, tmp_path):
    if fs_type(str(tmp_path)) != "ext4":
        pytest.skip(f"{tmp_path} is not on ext4")
    ext4, shm = tmp_path / "on-ext4.dat", f"/dev/shm/fsslower-{os.getpid()}.dat"
    try:
        events, sizes, _ = trace_gated(*tool_args, "0", work=WORK, work_args=[ext4, shm])
    finally:
        if os.path.exists(shm):
            os.unlink(shm)
    reads = [("R", int(n)) for n in sizes]
    by_name = {}
    for e in events:
        by_name.setdefault(e["name"], []).append((e["op"], e["bytes"]))
    return by_name, ext4.name, os.path.basename(shm), reads


@pytest.mark.parametrize("tool", [["fsslower", "-t", "ext4"], ["ext4slower"]])
def test_only_the_chosen_file_system(tool, tmp_path):
    by_name, ext4, shm, reads = operations(tool, tmp_path)
    assert by_name.get(ext4) == [("W", 1000)] * 5 + [("S", 0), ("S", 0)] + reads
    assert shm not in by_name


def test_tmpfs(tmp_path):
    by_name, ext4, shm, _ = operations(["fsslower", "-t", "tmpfs"], tmp_path)
    assert by_name.get(shm, [])[:7] == [("W", 1000)] * 5 + [("S", 0), ("S", 0)]
    assert ext4 not in by_name


def test_bad_input():
    assert "fsslower -t xfs" in assert_usage_error("ext4slower", "-t", "xfs")
    assert_usage_error("fsslower", "-t", "nosuchfs")
