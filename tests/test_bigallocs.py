import json

import pytest

from helpers import Running, run_bpfsight
from workload import Gated, vmstat

pytestmark = pytest.mark.bpf

# Touch one byte of every 2 MB-aligned range of a MADV_HUGEPAGE anonymous mapping: each touch
# is one order-9 allocation (a transparent huge page) when THP is "madvise" or "always". The
# workload reports how many huge pages it really got, from its own smaps_rollup.
THP_WORK = """
import ctypes, mmap
HUGE = 2 << 20
m = mmap.mmap(-1, 66 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_HUGEPAGE)
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
for off in range((-base) % HUGE, len(m) - HUGE + 1, HUGE):
    m[off] = 1
with open("/proc/self/smaps_rollup") as f:
    huge_kb = next(int(l.split()[1]) for l in f if l.startswith("AnonHugePages:"))
result = huge_kb // 2048
"""

# 200 MB touched page by page with THP off: 51200 order-0 allocations at least.
SMALL_WORK = """
import mmap
m = mmap.mmap(-1, 200 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_NOHUGEPAGE)
for off in range(0, len(m), mmap.PAGESIZE):
    m[off] = 1
result = len(m) // mmap.PAGESIZE
"""


def thp_mode():
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        return f.read().split("[")[1].split("]")[0]


def records(out):
    recs = [json.loads(line) for line in out.splitlines()]
    return [r for r in recs if "pid" in r], [r["total"] for r in recs if "total" in r]


def test_huge_page_faults_are_order_9_allocations_of_the_workload():
    if thp_mode() == "never":
        pytest.skip("transparent huge pages are off on this machine")
    with Gated.python(THP_WORK) as wl:
        tool = Running("bigallocs", "-o", "9", "-p", wl.pid, "--json").wait_attached()
        v0 = vmstat()
        huge, = map(int, wl.run())
        v1 = vmstat()
        rc, out, err = tool.stop()
    assert rc == 0, err
    rows, _ = records(out)
    assert huge > 0, "the workload got no huge page"
    assert [(r["pid"], r["order"], r["count"], r["pages"]) for r in rows] == \
        [(wl.pid, 9, huge, huge * 512)]
    assert v1["thp_fault_alloc"] - v0["thp_fault_alloc"] >= huge


def test_order_0_pages_match_vmstat_pgalloc():
    with Gated.python(SMALL_WORK) as wl:
        tool = Running("bigallocs", "-o", "0", "-r", "1000000", "--json").wait_attached()
        v0 = vmstat()
        touched, = map(int, wl.run())
        v1 = vmstat()
        rc, out, err = tool.stop()
    assert rc == 0, err
    rows, totals = records(out)
    pgalloc = sum(v1[k] - v0[k] for k in v1 if k.startswith("pgalloc_"))
    mine = sum(r["pages"] for r in rows if r["pid"] == wl.pid)
    # the workload's pages were all allocated inside the vmstat window, which is inside the
    # tool's window, and counted by pgalloc with everyone else's: workload <= the tool's figure
    # for it <= pgalloc delta (an event counter, summed over the CPUs exactly when read; every
    # page mm_page_alloc reports was counted in it), plus what the workload allocates outside
    # the vmstat window (the gate's few pages after "done": 64)
    assert touched <= mine <= pgalloc + 64, (touched, mine, pgalloc)
    # The total is every process's allocations, each printed row included (-r is large enough
    # for every row). pgalloc is no lower bound for it: the bulk allocator (vmalloc, page pools)
    # counts pgalloc without firing mm_page_alloc, and how much of that other processes do in
    # the window depends on what else runs on the machine.
    assert sum(t["pages"] for t in totals) == sum(r["pages"] for r in rows), (totals, len(rows))
    assert sum(t["count"] for t in totals) == sum(r["count"] for r in rows), totals
    assert totals[-1]["pages"] >= mine


@pytest.mark.parametrize("argv", [["-o", "11"], ["-o", "x"], ["-r", "0"], ["-p", "0"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("bigallocs", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
