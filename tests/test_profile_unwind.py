"""profile --unwind dwarf: whole user stacks of code built without frame pointers, unwound in
user space with .eh_frame from a copy of each sample's stack. Checked against the workload's
own call chains (two threads, each four calls deep), and against the frame-pointer walk of the
same binary, which must fail on it for the test to mean anything."""
import json
import os
import subprocess

import pytest

from helpers import Running
from profile_workloads import DEEP, NO_FP
from workload import Gated, compile_c

from bpfsight.profile import unwind

CHAINS = {"main": ["level4", "level3", "level2", "level1", "main"],
          "worker": ["worker4", "worker3", "worker2", "worker1", "worker"]}


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    return compile_c(DEEP, tmp_path_factory.mktemp("deep"), "deep", flags=NO_FP)


def profiled(binary, *args):
    with Gated([binary, "1.5"]) as w:
        tool = Running("profile", "-p", w.pid, "-U", "-F", "199", "--json",
                       *args).wait_attached()
        w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    samples = [r for r in recs if r.get("pid") == w.pid]
    summary = next(r for r in recs if "stack_errors" in r)
    return samples, summary, err


def thread_root(frame):
    """Where glibc's CFI ends a thread's stack: _start, or clone3 (__GI___clone3, a local
    alias, in a stripped libc)."""
    return frame == "_start" or "clone" in frame


def whole(stack):
    """Which chain a user stack (leaf first) shows in full, from its spinning function to the
    thread's start; None when it does not."""
    for name, chain in CHAINS.items():
        if chain[0] in stack:
            i = stack.index(chain[0])
            if stack[i:i + len(chain)] == chain and thread_root(stack[-1]):
                return name
    return None


def shares(samples):
    total = sum(s["value"] for s in samples)
    by_chain = {}
    for s in samples:
        by_chain[whole(s["user_stack"])] = by_chain.get(whole(s["user_stack"]), 0) + s["value"]
    return total, by_chain


def symbol_addresses(binary):
    """{name: link-time address} of the binary's functions, from binutils' nm."""
    out = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    return {p[2]: int(p[0], 16) for p in (ln.split() for ln in out.splitlines())
            if len(p) == 3 and p[1] in "tT"}


def test_cfi_table_rows_and_their_cache(deep, tmp_path):
    """The table says what the compiler's CFI says (readelf --debug-dump=frames): at a
    function's first instruction the CFA is rsp + 8 (the return address just pushed), and
    _start ends the stack; a second open comes from the cache, identical."""
    addrs = symbol_addresses(deep)
    table = unwind.open_table(deep, str(tmp_path))
    assert table.rule(addrs["level4"]) == (unwind.CFA_SP, 8, 0)
    assert table.rule(addrs["_start"])[0] == unwind.STACK_END
    cached = os.listdir(tmp_path)
    assert len(cached) == 1 and cached[0].endswith(".npz")
    again = unwind.open_table(deep, str(tmp_path))
    assert (again.pcs == table.pcs).all() and (again.rules == table.rules).all()
    assert again.loads == table.loads


def test_plt_expression_is_recognised():
    """The one CFA expression glibc's toolchain emits (PLT entries): rsp + 8, + 8 past the
    push at offset 11 of each 16-byte entry; any other expression is no rule."""
    plt = [0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22]
    assert unwind._plt_threshold(plt) == 11
    assert unwind._plt_threshold(plt[:-1]) is None
    assert unwind._plt_threshold([0x77, 0x10] + plt[2:]) is None


@pytest.mark.bpf
def test_stacks_without_frame_pointers_are_whole(deep):
    samples, summary, err = profiled(deep)
    total, by_chain = shares(samples)
    assert total >= 300, (total, err)  # 2 threads x 1.5 s of CPU at 199 Hz: ~600
    complete = by_chain.get("main", 0) + by_chain.get("worker", 0)
    assert complete >= 0.95 * total, (by_chain, samples[:3])
    # both threads are there, each about half (they spin the same CPU time)
    for name in CHAINS:
        assert by_chain.get(name, 0) >= 0.3 * total, (name, by_chain)
    # every frame named: the vDSO's (where clock_gettime runs) from a copy of its image
    named = sum(s["value"] for s in samples if "[unknown]" not in s["user_stack"])
    assert named >= 0.95 * total, samples[:3]
    assert any(f.startswith("__vdso_") for s in samples for f in s["user_stack"]), samples[:3]
    unwinding = summary["unwinding"]
    assert unwinding["stacks"] == total
    assert unwinding["complete_pct"] >= 95, unwinding
    assert ".eh_frame" in err and "% complete" in err


@pytest.mark.bpf
def test_the_frame_pointer_walk_cannot_unwind_it(deep):
    """The premise: without frame pointers, the kernel's walk does not reach the threads'
    starts (else the test above would prove nothing about .eh_frame)."""
    samples, summary, _ = profiled(deep, "--unwind", "fp")
    total, by_chain = shares(samples)
    assert total >= 300
    assert by_chain.get(None, 0) >= 0.5 * total, by_chain
    assert "unwinding" not in summary
