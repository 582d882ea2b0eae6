"""slabratetop against a workload's own opens: each open() allocates one struct file from the
filp cache, so -p counts at least as many filp allocations as the workload opened, and no
more than a handful beyond (what the interpreter itself opens while stopping)."""
import pytest

from toolrun import trace_gated

pytestmark = pytest.mark.bpf

N = 3000
WORK = f"""
import os
for _ in range({N}):
    os.close(os.open("/dev/null", os.O_RDONLY))
result = "ok"
"""


def test_filp_allocations_match_the_workloads_opens():
    recs, _, _ = trace_gated("slabratetop", "-C", "-r", "500", "60", work=WORK)
    filp = sum(r["count"] for r in recs if r["cache"] == "filp")
    assert N <= filp <= N + 20, filp
    (size,) = {r["bytes"] // r["count"] for r in recs if r["cache"] == "filp"}
    with open("/proc/slabinfo") as f:  # the object size the kernel reports for filp
        objsize = next(int(ln.split()[3]) for ln in f if ln.startswith("filp "))
    assert size == objsize
