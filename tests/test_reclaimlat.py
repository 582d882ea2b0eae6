import json
import mmap

import pytest

from helpers import Running, run_bpfsight
from memcg import MemCgroup
from workload import Gated, vmstat, write_uncached

pytestmark = pytest.mark.bpf

LIMIT, FILE_SIZE = 32 << 20, 96 << 20

# Read a file three times the cgroup's limit: its page cache is charged to the cgroup, which
# must reclaim (memcg reclaim, in the reading task) to make room.
READ_WORK = """
with open(sys.argv[1], "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
result = 0
"""


@pytest.fixture
def uncached_file(tmp_path):
    return write_uncached(tmp_path / "big", FILE_SIZE)


def test_memcg_reclaim_pages_and_count_match_the_cgroup(uncached_file):
    with MemCgroup("bpfsight-reclaimlat", LIMIT) as cg, Gated.python(READ_WORK, uncached_file) as wl:
        cg.add(wl.pid)
        tool = Running("reclaimlat", "-P", "-p", wl.pid, "--json").wait_attached()
        usage0, hits0, v0 = cg.usage(), cg.limit_hits(), vmstat()
        wl.run()
        usage1, hits1, v1 = cg.usage(), cg.limit_hits(), vmstat()
        rc, out, err = tool.stop()
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [(r["kind"], r["pid"]) for r in recs] == [("memcg", wl.pid)]
    rec = recs[0]
    # every page of the file was charged to the cgroup; what is not charged at the end was
    # reclaimed (the slack covers the workload's own small allocations and per-CPU charge
    # batches of up to 64 pages)
    charged = FILE_SIZE // mmap.PAGESIZE
    expected = charged - (usage1 - usage0) // mmap.PAGESIZE
    assert abs(rec["reclaimed_pages"] - expected) <= 0.03 * expected + 512, (rec, expected)
    # the kernel-wide steal counter includes our reclaim (and anyone else's)
    steal = sum(v1[k] - v0[k] for k in ("pgsteal_anon", "pgsteal_file"))
    assert rec["reclaimed_pages"] <= steal + 64, (rec["reclaimed_pages"], steal)
    # each reclaim follows at least one charge that hit the limit
    assert 0 < rec["count"] <= hits1 - hits0, (rec["count"], hits1 - hits0)
    assert rec["total"] > 0


@pytest.mark.parametrize("argv", [["-p", "abc"], ["-c", "/no/such/cgroup"], ["1", "0"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("reclaimlat", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
