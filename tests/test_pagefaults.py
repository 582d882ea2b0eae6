import json

import pytest

from helpers import Running, run_bpfsight
from workload import Gated, read_proc_stat, write_uncached

pytestmark = pytest.mark.bpf

PAGES = 20000
MINFLT, MAJFLT = 7, 9  # indexes of /proc/PID/stat fields 10 and 12 in read_proc_stat()

# Touch every page of a fresh private anonymous mapping (THP off): one minor fault each.
ANON_WORK = f"""
import mmap
m = mmap.mmap(-1, {PAGES} * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_NOHUGEPAGE)
for off in range(0, len(m), mmap.PAGESIZE):
    m[off] = 1
result = {PAGES}
"""

# Read a mapped file that is not in the page cache: faults that wait for I/O are major.
FILE_WORK = """
import mmap
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
total = 0
for off in range(0, len(m), mmap.PAGESIZE):
    total += m[off]
result = 0
"""


def traced_faults(work, *tool_args, work_args=()):
    """Run work under `pagefaults -p`; returns (its records, minflt and majflt deltas from its
    own /proc/PID/stat, its pid)."""
    with Gated.python(work, *work_args) as wl:
        tool = Running("pagefaults", "-p", wl.pid, "--json", *tool_args).wait_attached()
        before = read_proc_stat(wl.pid)
        wl.run()
        after = read_proc_stat(wl.pid)
        rc, out, err = tool.stop()
    assert rc == 0, err
    deltas = [int(after[i]) - int(before[i]) for i in (MINFLT, MAJFLT)]
    return [json.loads(line) for line in out.splitlines()], deltas, wl.pid


def test_minor_faults_match_proc_stat():
    recs, (minflt, majflt), pid = traced_faults(ANON_WORK)
    rec, = [r for r in recs if r.get("pid") == pid]
    assert rec["minor"] >= PAGES
    # the tool also sees the few faults of the gate protocol around the measured window
    assert minflt <= rec["minor"] <= minflt * 1.01 + 50, (rec, minflt)
    assert rec["major"] == majflt == 0
    # each counted fault was one exception taken (user mode here), perhaps plus retries
    assert rec["user"] + rec["kernel"] >= rec["minor"]


def test_major_faults_match_proc_stat_and_name_the_file(tmp_path):
    path = write_uncached(tmp_path / "mapped.bin", 16 << 20)
    recs, (minflt, majflt), pid = traced_faults(FILE_WORK, "-f", work_args=[path])
    rec, = [r for r in recs if r.get("pid") == pid]
    assert majflt > 0
    assert rec["major"] == majflt, (rec, majflt)
    files = {r["file"]: r["major"] for r in recs if "file" in r}
    assert files.get("mapped.bin") == majflt, files


@pytest.mark.parametrize("argv", [["-r", "0"], ["-p", "-5"], ["x"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("pagefaults", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
