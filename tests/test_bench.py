"""bench/'s own machinery, cross-checked against the workload's own counts: the C and Python
ring-buffer consumers it compares receive every record the producer made, and the harness's
program run counts and CPU figures are real."""
import importlib.util
import os

import pytest

pytestmark = pytest.mark.bpf

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", os.path.join(BENCH, "run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    run.build()
    return run


@pytest.mark.parametrize("consumer", ["C", "bpfsight"])
def test_stream_consumer_receives_every_record(bench, consumer):
    label = next(k for k in bench.stream_consumers() if k.startswith(consumer))
    # 200k records at 400k/s: the 1 MiB ring holds ~50 ms of them, ample for a loaded machine
    res = bench.stream_run(bench.stream_consumers()[label], 400_000, 0.5)
    assert res["drops"] == 0
    assert res["lost"] == 0
    assert 0.8 * 400_000 < res["delivered_per_s"] <= 1.01 * 400_000


def test_overhead_harness_counts_runs_and_cpu(bench):
    """The minimal C syscount runs at least once per getppid() of the workload (its
    sys_exit program sees every syscall on the machine), and a traced getppid() costs CPU."""
    from bpfsight.bpf.info import RunTimeStats
    c = [str(bench.BUILD / "loader"), str(bench.BUILD / "minimal.bpf.o"), "min_syscount"]
    bare = bench.Workload("getppid", 200_000)
    bare.go()
    with RunTimeStats():
        tracer = bench.Tracer(c)
        try:
            runs0, _ = bench.prog_runs(tracer.pid)
            traced = bench.Workload("getppid", 200_000)
            ops, _ = traced.go()
            runs1, ns = bench.prog_runs(tracer.pid)
        finally:
            tracer.stop()
    assert runs1 - runs0 >= ops
    assert 0 < ns / runs1 < 10_000
    assert traced.cpu_ns_per_op > bare.cpu_ns_per_op
