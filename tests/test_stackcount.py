"""stackcount against a C workload whose call chain and call count are known: the user stack
of each getppid() call is main -> outer -> (inner) -> getppid, counted exactly; the
tracepoint's kernel stack goes through the syscall entry."""
import pytest

from toolrun import assert_usage_error
from workload import Gated, compile_c
from helpers import Running

pytestmark = pytest.mark.bpf

N = 777
SOURCE = r"""
#include <stdio.h>
#include <unistd.h>
volatile int sink;
__attribute__((noinline)) int inner(void) { return getppid() + 1; }  /* no tail call */
__attribute__((noinline)) void outer(int n) { for (int i = 0; i < n; i++) sink += inner(); }
int main(void) {
    char line[8];
    printf("ready\n"); fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    outer(%d);
    printf("done ok\n"); fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {}
    return 0;
}
""" % N


def run_on(tmp_path, *args):
    binary = compile_c(SOURCE, tmp_path, flags=["-fno-omit-frame-pointer"])
    with Gated([binary]) as w:
        tool = Running("stackcount", "-p", w.pid, "--json", *args).wait_attached()
        try:
            w.run()
        finally:
            rc, out, err = tool.stop()
    assert rc == 0, err
    import json
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_user_stacks_of_a_known_call_chain(tmp_path):
    recs = run_on(tmp_path, "-U", "c:getppid")
    mine = [r for r in recs if "outer" in r["user_stack"]]
    assert sum(r["count"] for r in mine) == N, recs
    (stack,) = {tuple(r["user_stack"]) for r in mine}
    # at a function's first instruction the frame-pointer walk cannot see its direct caller
    # (inner): the return address is on the stack's top, not yet in a frame (as in BCC)
    i = stack.index("outer")
    assert stack[0] == "getppid" and stack[i:i + 2] == ("outer", "main"), stack


def test_kernel_stacks_of_the_syscall_tracepoint(tmp_path):
    recs = run_on(tmp_path, "-K", "t:syscalls:sys_enter_getppid")
    assert sum(r["count"] for r in recs) == N, recs
    assert all(r["user_stack"] == [] for r in recs)
    assert any("do_syscall_64" in r["kernel_stack"] for r in recs), recs


def test_bad_patterns():
    assert "kprobes" in assert_usage_error("stackcount", "schedule")
