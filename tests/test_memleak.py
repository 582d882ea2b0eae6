"""memleak against workloads that know what they leaked: a C program leaks known numbers of
known-size blocks from known functions (and frees as many again), a Python process keeps
known numbers of System V messages queued in the kernel (and receives some back)."""
import json
import os

import pytest

from helpers import Running, assert_released, bpf_objects_of
from toolrun import assert_usage_error
from workload import Gated, compile_c

pytestmark = pytest.mark.bpf

N = 40
LEAKER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
/* an opaque use: the compiler may not drop an allocation it can prove unused */
#define SINK(p) ({ void *__p = (p); __asm__ volatile("" : "+r"(__p) :: "memory"); __p; })
void *kept[10000];
int nkept;
__attribute__((noinline)) void leak_malloc(int n, size_t size)
{ for (int i = 0; i < n; i++) kept[nkept++] = SINK(memset(malloc(size), 1, size)); }
__attribute__((noinline)) void leak_calloc(int n, size_t size)
{ for (int i = 0; i < n; i++) kept[nkept++] = SINK(calloc(3, size)); }
__attribute__((noinline)) void leak_realloc(int n, size_t size)
{ for (int i = 0; i < n; i++) kept[nkept++] = SINK(realloc(SINK(malloc(16)), size)); }
__attribute__((noinline)) void leak_memalign(int n, size_t size)
{ for (int i = 0; i < n; i++) { void *p; if (posix_memalign(&p, 64, size)) exit(1); kept[nkept++] = SINK(p); } }
__attribute__((noinline)) void leak_big(int n, size_t size)  /* glibc mmaps these itself */
{ for (int i = 0; i < n; i++) kept[nkept++] = SINK(malloc(size)); }
/* as many again of each kind, every one freed */
__attribute__((noinline)) void churn(int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		char *p = SINK(malloc(size)), *q = SINK(calloc(2, size)), *r = SINK(realloc(NULL, size));
		void *a, *m;
		if (posix_memalign(&a, 64, size)) exit(1);
		r = SINK(realloc(r, 2 * size));
		free(p); free(q); free(r); free(SINK(a)); free(SINK(malloc(1 << 20)));
		m = mmap(NULL, 3 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(SINK(m), 3 * size);
	}
}
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	char line[16];
	long bytes = 0;
	printf("ready\n"); fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) return 1;
	churn(n, 1000);
	leak_malloc(n, 4099); bytes += 4099L * n;
	leak_calloc(n, 24); bytes += 3 * 24L * n;
	leak_realloc(n, 7000); bytes += 7000L * n;
	leak_memalign(n, 300); bytes += 300L * n;
	leak_big(3, 1 << 20); bytes += 3L << 20;
	churn(n, 1000);
	printf("done %d %ld\n", nkept, bytes); fflush(stdout);
	while (fgets(line, sizeof(line), stdin));
	return 0;
}
"""
# function -> (blocks, bytes each) as the program above leaks them
LEAKS = {"leak_malloc": (N, 4099), "leak_calloc": (N, 3 * 24), "leak_realloc": (N, 7000),
         "leak_memalign": (N, 300), "leak_big": (3, 1 << 20)}


def trace(argv, *tool_args):
    with Gated(argv) as w:
        tool = Running("memleak", "-p", w.pid, "--json", *tool_args).wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        done = w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert "Traceback" not in err, err
    assert_released(held)  # the uprobes included
    return [json.loads(line) for line in out.splitlines()], done


def by_function(recs):
    """{leaking function: (allocations, bytes)} over the report's stacks."""
    found = {}
    for r in recs:
        fn = next((f for f in r.get("stack", ()) if f in LEAKS or f == "churn"), None)
        if fn:
            allocs, size = found.get(fn, (0, 0))
            found[fn] = (allocs + r["allocs"], size + r["bytes"])
    return found


@pytest.fixture(scope="module")
def leaker(tmp_path_factory):
    return compile_c(LEAKER, tmp_path_factory.mktemp("memleak"), "leaker",
                     flags=["-fno-omit-frame-pointer"])


def test_outstanding_blocks_by_stack_equal_what_the_program_leaked(leaker):
    recs, (kept, leaked_bytes) = trace([leaker, str(N)], "-o", "0", "-a", "-T", "50")
    found = by_function(recs)
    # exact: every block is counted once at its allocator's return and forgotten at its free
    assert found == {fn: (n, n * size) for fn, (n, size) in LEAKS.items()}, found
    assert sum(n for n, _ in found.values()) == int(kept)
    assert sum(b for _, b in found.values()) == int(leaked_bytes)
    # -a: each block's own address and size
    blocks = [a for r in recs if "leak_malloc" in r.get("stack", ()) for a in r["addresses"]]
    assert len({a["addr"] for a in blocks}) == N and {a["size"] for a in blocks} == {4099}
    # the caller's caller is on the stack too (frame pointers)
    assert all("main" in r["stack"] for r in recs if "leak_malloc" in r.get("stack", ()))


def test_older_and_size_filters(leaker):
    # nothing the program leaked is ten minutes old
    recs, _ = trace([leaker, str(N)], "-o", "600000")
    assert by_function(recs) == {}
    # -z/-Z: only blocks of 300..5000 bytes are recorded; --combined-only reads the kernel's
    # per-stack sums (no -o there)
    recs, _ = trace([leaker, str(N)], "-z", "300", "-Z", "5000", "--combined-only")
    assert by_function(recs) == {"leak_malloc": (N, N * 4099), "leak_memalign": (N, N * 300)}


MSGS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
IPC_PRIVATE, IPC_RMID = 0, 0
q = libc.msgget(IPC_PRIVATE, 0o600)
size = int(sys.argv[1]); sent, taken = int(sys.argv[2]), int(sys.argv[3])
msg = ctypes.create_string_buffer(8 + size)
msg[0] = 1  # mtype 1
for i in range(sent):
    assert libc.msgsnd(q, msg, size, 0) == 0, ctypes.get_errno()
for i in range(taken):
    assert libc.msgrcv(q, msg, size, 0, 0) == size, ctypes.get_errno()
result = f"{sent - taken} {q}"
"""


def test_kernel_allocations_of_a_cgroup(tmp_path):
    """Kernel mode: each queued System V message is one kmalloc (load_msg, under do_msgsnd)
    that stays until received; the workload runs in its own cgroup, filtered in the kernel."""
    from bpfsight.target import cgroup2_root
    cg = os.path.join(cgroup2_root(), f"bpfsight-memleak-{os.getpid()}")
    os.mkdir(cg)
    size, sent, taken = 200, 50, 20
    try:
        with Gated.python(MSGS, size, sent, taken) as w:
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write(str(w.pid))
            tool = Running("memleak", "-c", cg, "-o", "0", "--json").wait_attached()
            queued, q = w.run()
            rc, out, err = tool.stop()
            libc = __import__("ctypes").CDLL(None)
            libc.msgctl(int(q), 0, None)  # IPC_RMID: the messages go with their queue
    finally:
        for pid in open(os.path.join(cg, "cgroup.procs")).read().split():
            with open(os.path.join(os.path.dirname(cg), "cgroup.procs"), "w") as f:
                f.write(pid)
        os.rmdir(cg)
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    # the messages: kmalloc called by load_msg; the slab's own pages (allocate_slab, under
    # the same kmalloc) are counted apart, as whole pages
    msgs = [r for r in recs if r.get("stack", [None])[1:2] == ["load_msg"]]
    assert sum(r["allocs"] for r in msgs) == int(queued), msgs
    # bytes are what the slab handed out: at least the message and its header each
    assert all(r["bytes"] >= r["allocs"] * size for r in msgs)
    pages = [r for r in recs if "do_msgsnd" in r.get("stack", ()) and r not in msgs]
    assert all("allocate_slab" in r["stack"] and r["bytes"] % 4096 == 0 for r in pages), pages


def test_bad_input():
    assert "min size" in assert_usage_error("memleak", "-z", "100", "-Z", "10")
    assert "no process" in assert_usage_error("memleak", "-p", "4194303")
    assert "invalid age" in assert_usage_error("memleak", "-o", "-5")
