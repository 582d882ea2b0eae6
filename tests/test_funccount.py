"""funccount against the workload's own call counts: a libc function (uprobe), the
syscall's tracepoint, and a wildcard over libc's symbols, with -p in the kernel."""
import pytest

from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

N = 1234
WORK = f"""
import ctypes
libc = ctypes.CDLL("libc.so.6")
for _ in range({N}):
    libc.getppid()
result = "ok"
"""


@pytest.mark.parametrize("pattern, label", [
    ("c:getppid", "c:getppid"),
    ("t:syscalls:sys_enter_getppid", "syscalls:sys_enter_getppid"),
    ("syscalls:sys_enter_getppid", "syscalls:sys_enter_getppid"),
    ("c:getp*id", "c:getppid"),
])
def test_counts_equal_the_workloads_calls(pattern, label):
    recs, _, _ = trace_gated("funccount", pattern, work=WORK)
    counts = {r["func"]: r["count"] for r in recs}
    assert counts.get(label) == N, counts
    if "*" in pattern:
        assert len(counts) >= 1 and all(f.startswith("c:getp") for f in counts), counts


def test_kernel_functions_and_bad_patterns():
    assert "kprobes" in assert_usage_error("funccount", "vfs_read")
    assert "kprobes" in assert_usage_error("funccount", "p::vfs_read")
    assert "no tracepoint" in assert_usage_error("funccount", "t:nosuch:event")
    assert "no function" in assert_usage_error("funccount", "c:no_such_function_*")
