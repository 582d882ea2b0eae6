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
    # 20k records (0.05 s at 400k/s) of 48 bytes (40 + the 8-byte ring header) and the
    # workload's few other syscalls fill at most ~0.92 MiB of the 1 MiB ring: none can be
    # dropped even if the consumer gets no CPU until the producer is done, so every record
    # must arrive however slow or loaded the machine
    res = bench.stream_run(bench.stream_consumers()[label], 400_000, 0.05)
    assert res["drops"] == 0
    assert res["lost"] == 0
    # what it delivered is what the producer made, over the same elapsed time; the producer
    # paces itself on an absolute schedule (never ahead of rate), so it cannot beat the rate
    assert res["delivered_per_s"] == res["produced_per_s"] <= 1.001 * 400_000, res


def test_overhead_harness_counts_runs_and_cpu(bench):
    """The minimal C syscount runs at least once per getppid() of the workload (its
    sys_exit program sees every syscall on the machine), and its run time and the workload's
    CPU time are real figures."""
    import time
    from bpfsight.bpf.info import RunTimeStats
    c = [str(bench.BUILD / "loader"), str(bench.BUILD / "minimal.bpf.o"), "min_syscount"]
    with RunTimeStats():
        t0 = time.monotonic_ns()
        tracer = bench.Tracer(c)
        try:
            runs0, ns0 = bench.prog_runs(tracer.pid)
            started = time.monotonic_ns()
            traced = bench.Workload("getppid", 200_000)
            ops, _ = traced.go()
            ended = time.monotonic_ns()
            runs1, ns = bench.prog_runs(tracer.pid)
        finally:
            tracer.stop()
        t1 = time.monotonic_ns()
    assert runs1 - runs0 >= ops
    # programs run on the machine's CPUs: never longer than all of them for the whole time
    # the tracer existed (a unit slip would break this), and each run takes some time
    assert 0 < ns <= (t1 - t0) * os.cpu_count(), (ns, t1 - t0)
    # the single-threaded workload cannot use more CPU than the wall time it existed
    assert 0 < traced.cpu_ns_per_op * ops <= ended - started, (traced.cpu_ns_per_op, ops)
