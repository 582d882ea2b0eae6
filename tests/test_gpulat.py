"""gpulat against a fake CUDA: libcudart.so.12 and libcuda.so.1 built here, exporting the real
symbol names, each call sleeping a known time (the runtime calls the driver, as the real one
does, so calls nest). The workload knows its calls and bytes, times every call with its own
clock, and measures with /proc/thread-self/schedstat how long its sync calls spent off CPU and
waiting for a CPU: the independent figures the tool's are checked against."""
import json
import os
import re
import stat
import subprocess

import pytest

from helpers import Running, assert_released, bpf_objects_of, run_bpfsight
from workload import Gated

pytestmark = pytest.mark.bpf

# Sleeps per call, each just above a log2 bucket's low edge: a call of the fake library can
# never land below it (a sleep never ends early), and it rarely sits near an edge.
LAUNCH_US, COPY_US, SYNC_US, ALLOC_US = 1100, 2200, 4500, 550
COPY_BYTES, ALLOC_BYTES = 4096, 1 << 20
N = {"rt_launch": 30, "drv_launch": 20, "rt_copy": 10, "drv_copy": 5, "rt_malloc": 12,
     "drv_malloc": 4, "rt_ssync": 8, "rt_dsync": 6, "drv_ssync": 5, "drv_csync": 4,
     "ioctl_ctl": 40, "ioctl_uvm": 12, "ioctl_other": 25}
NV_ESC_RM_CONTROL = (3 << 30) | (32 << 16) | (ord("F") << 8) | 0x2A  # _IOWR('F', 0x2A, 32 B)
UVM_INITIALIZE = 0x30000001
NESTED = {"cudaLaunchKernel": "cuLaunchKernel", "cudaMemcpy": "cuMemcpyHtoD_v2",  # as the
          "cudaStreamSynchronize": "cuStreamSynchronize",  # fake runtime calls the driver
          "cudaDeviceSynchronize": "cuCtxSynchronize", "cudaMalloc": "cuMemAlloc_v2"}

DRIVER = r"""
#include <stddef.h>
#include <time.h>
typedef int CUresult;
typedef unsigned long long CUdeviceptr;
static void spend_us(long us)
{
	struct timespec ts = { us / 1000000, (us %% 1000000) * 1000 };
	nanosleep(&ts, NULL);
}
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
			unsigned by, unsigned bz, unsigned shmem, void *stream, void **params,
			void **extra) { spend_us(%(LAUNCH_US)d); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t bytes)
{ spend_us(%(COPY_US)d); return 0; }
CUresult cuStreamSynchronize(void *stream) { spend_us(%(SYNC_US)d); return 0; }
CUresult cuCtxSynchronize(void) { spend_us(%(SYNC_US)d); return 0; }
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) { spend_us(%(ALLOC_US)d); *p = 4096; return 0; }
""" % globals()

RUNTIME = r"""
#include <stddef.h>
typedef unsigned long long CUdeviceptr;
typedef struct { unsigned x, y, z; } dim3;
int cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
		   void *, void **, void **);
int cuMemcpyHtoD_v2(CUdeviceptr, const void *, size_t);
int cuStreamSynchronize(void *);
int cuCtxSynchronize(void);
int cuMemAlloc_v2(CUdeviceptr *, size_t);
int cudaLaunchKernel(const void *f, dim3 g, dim3 b, void **args, size_t shmem, void *stream)
{ return cuLaunchKernel((void *)f, g.x, g.y, g.z, b.x, b.y, b.z, shmem, stream, args, 0); }
int cudaMemcpy(void *dst, const void *src, size_t count, int kind)
{ return cuMemcpyHtoD_v2((CUdeviceptr)dst, src, count); }
int cudaStreamSynchronize(void *stream) { return cuStreamSynchronize(stream); }
int cudaDeviceSynchronize(void) { return cuCtxSynchronize(); }
int cudaMalloc(void **p, size_t size)
{ CUdeviceptr d; int r = cuMemAlloc_v2(&d, size); *p = (void *)d; return r; }
"""

# argv: nvidiactl node, nvidia-uvm node, call log. Times each of its calls into the log
# ("function ns" per line) and prints "done OFFCPU_NS RUN_DELAY_NS", measured around each sync
# call from its own schedstat: off CPU = wall time - on-CPU time.
PROGRAM = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
typedef unsigned long long CUdeviceptr;
typedef struct { unsigned x, y, z; } dim3;
int cudaLaunchKernel(const void *, dim3, dim3, void **, size_t, void *);
int cudaMemcpy(void *, const void *, size_t, int);
int cudaStreamSynchronize(void *);
int cudaDeviceSynchronize(void);
int cudaMalloc(void **, size_t);
int cuLaunchKernel(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
		   void *, void **, void **);
int cuMemcpyHtoD_v2(CUdeviceptr, const void *, size_t);
int cuStreamSynchronize(void *);
int cuCtxSynchronize(void);
int cuMemAlloc_v2(CUdeviceptr *, size_t);

static int schedstat;
static long long wall, oncpu, delay;
static FILE *calls;

static void sched_now(long long *run, long long *wait)
{
	char buf[128] = "";
	pread(schedstat, buf, sizeof(buf) - 1, 0);
	sscanf(buf, "%%lld %%lld", run, wait);
}

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define LOGGED(name, call) do {					\
	long long t0 = mono_ns();					\
	call;								\
	fprintf(calls, "%%s %%lld\n", name, mono_ns() - t0);		\
} while (0)

#define TIMED(name, call) do {						\
	long long r0, w0, r1, w1, t0, t1;				\
	sched_now(&r0, &w0);						\
	t0 = mono_ns();							\
	call;								\
	t1 = mono_ns();							\
	sched_now(&r1, &w1);						\
	wall += t1 - t0; oncpu += r1 - r0; delay += w1 - w0;		\
	fprintf(calls, "%%s %%lld\n", name, t1 - t0);			\
} while (0)

static void ioctls(const char *path, unsigned long cmd, int n)
{
	char arg[64] = "";
	int fd = open(path, O_RDWR), i;
	for (i = 0; i < n; i++)
		ioctl(fd, cmd, arg);
	close(fd);
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	dim3 g = { 1, 1, 1 };
	CUdeviceptr d;
	void *p;
	char line[64];
	int i;

	schedstat = open("/proc/thread-self/schedstat", O_RDONLY);
	calls = fopen(argv[3], "w");
	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	for (i = 0; i < %(rt_launch)d; i++)
		LOGGED("cudaLaunchKernel", cudaLaunchKernel(main, g, g, 0, 0, 0));
	for (i = 0; i < %(drv_launch)d; i++)
		LOGGED("cuLaunchKernel", cuLaunchKernel(main, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0));
	for (i = 0; i < %(rt_copy)d; i++)
		LOGGED("cudaMemcpy", cudaMemcpy(buf, buf, %(COPY_BYTES)d * (i + 1), 1));
	for (i = 0; i < %(drv_copy)d; i++)
		LOGGED("cuMemcpyHtoD_v2", cuMemcpyHtoD_v2(4096, buf, %(COPY_BYTES)d * (i + 1)));
	for (i = 0; i < %(rt_malloc)d; i++)
		LOGGED("cudaMalloc", cudaMalloc(&p, %(ALLOC_BYTES)d));
	for (i = 0; i < %(drv_malloc)d; i++)
		LOGGED("cuMemAlloc_v2", cuMemAlloc_v2(&d, %(ALLOC_BYTES)d));
	for (i = 0; i < %(rt_ssync)d; i++)
		TIMED("cudaStreamSynchronize", cudaStreamSynchronize(0));
	for (i = 0; i < %(rt_dsync)d; i++)
		TIMED("cudaDeviceSynchronize", cudaDeviceSynchronize());
	for (i = 0; i < %(drv_ssync)d; i++)
		TIMED("cuStreamSynchronize", cuStreamSynchronize(0));
	for (i = 0; i < %(drv_csync)d; i++)
		TIMED("cuCtxSynchronize", cuCtxSynchronize());
	fclose(calls);
	ioctls(argv[1], %(NV_ESC_RM_CONTROL)dUL, %(ioctl_ctl)d);
	ioctls(argv[2], %(UVM_INITIALIZE)dUL, %(ioctl_uvm)d);
	ioctls("/dev/null", %(NV_ESC_RM_CONTROL)dUL, %(ioctl_other)d);  /* not NVIDIA's */
	printf("done %%lld %%lld\n", wall - oncpu, delay); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
""" % {**N, **globals()}


def _gcc(*args):
    subprocess.run(["gcc", "-O1", "-fno-optimize-sibling-calls", *args], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def fake_cuda(tmp_path_factory):
    """(directory, workload binary): the fake libraries, the program linked against them, and
    two char device nodes named like the driver's (with /dev/null's numbers, so an ioctl on
    them is a real ioctl on a device that answers ENOTTY)."""
    d = tmp_path_factory.mktemp("fakecuda")
    for name, src, extra in (("libcuda.so.1", DRIVER, []),
                             ("libcudart.so.12", RUNTIME, [str(d / "libcuda.so.1")])):
        (d / (name + ".c")).write_text(src)
        _gcc("-shared", "-fPIC", f"-Wl,-soname,{name}", "-o", str(d / name),
             str(d / (name + ".c")), *extra)
    (d / "gpuwork.c").write_text(PROGRAM)
    _gcc("-o", str(d / "gpuwork"), str(d / "gpuwork.c"), str(d / "libcudart.so.12"),
         str(d / "libcuda.so.1"), f"-Wl,-rpath,{d}", "-Wl,-z,now")  # no lazy binding in a call
    for node in ("nvidiactl", "nvidia-uvm"):
        os.mknod(d / node, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    return d, str(d / "gpuwork")


def _gated(fake_cuda, log="/dev/null"):
    d, binary = fake_cuda
    return Gated([binary, str(d / "nvidiactl"), str(d / "nvidia-uvm"), str(log)])


def workload_times(log):
    """{function: [usecs per call]} as the workload timed its calls; a runtime call's time
    stands for the driver call nested in it too (a few microseconds longer)."""
    times = {}
    for line in log.read_text().splitlines():
        func, ns = line.split()
        for f in (func, NESTED.get(func)):
            if f:
                times.setdefault(f, []).append(int(ns) // 1000)
    return times


def within_workload_times(rec, usecs):
    """The tool times each call from inside the workload's own timing of it (uprobe entry to
    return, within clock_gettime before and after), so per call the tool's time is at most the
    workload's. Over a histogram: for every bucket, the tool has no more calls at or above it
    than the workload's timings have. Exact on any machine, however loaded: a call preempted
    on its way into or out of the probe only makes the workload's figure larger."""
    mine = [0] * 32
    for us in usecs:
        mine[max(us.bit_length() - 1, 0)] += 1
    tool = [b["count"] for b in rec["buckets"]] + [0] * 32
    return all(sum(tool[i:32]) <= sum(mine[i:]) for i in range(32))


def copied(n):
    """Bytes of n copies of (i + 1) * COPY_BYTES, i = 0..n-1, as the workload makes them."""
    return COPY_BYTES * n * (n + 1) // 2


def _records(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def none_faster(rec, sleep_us):
    """No call in a bucket below its sleep: a sleep never ends early."""
    return all(b["count"] == 0 for b in rec["buckets"] if b["high"] < sleep_us)


def test_counts_buckets_bytes_ioctls_and_sync_waits(fake_cuda, tmp_path):
    log = tmp_path / "calls"
    with _gated(fake_cuda, log) as traced, _gated(fake_cuda) as other:
        tool = Running("gpulat", "-p", traced.pid, "--json").wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        other.run()  # the same libraries in another process: -p leaves it out
        offcpu_ns, run_delay_ns = map(int, traced.run())
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert_released(held)
    recs = _records(out)
    assert {r["pid"] for r in recs} == {traced.pid}
    calls = {r["function"]: r for r in recs if r["type"] == "call"}
    expect = {  # the runtime calls the driver: driver counts include the runtime's calls
        "cudaLaunchKernel": (N["rt_launch"], LAUNCH_US),
        "cuLaunchKernel": (N["rt_launch"] + N["drv_launch"], LAUNCH_US),
        "cudaMemcpy": (N["rt_copy"], COPY_US),
        "cuMemcpyHtoD_v2": (N["rt_copy"] + N["drv_copy"], COPY_US),
        "cudaMalloc": (N["rt_malloc"], ALLOC_US),
        "cuMemAlloc_v2": (N["rt_malloc"] + N["drv_malloc"], ALLOC_US),
        "cudaStreamSynchronize": (N["rt_ssync"], SYNC_US),
        "cuStreamSynchronize": (N["rt_ssync"] + N["drv_ssync"], SYNC_US),
        "cudaDeviceSynchronize": (N["rt_dsync"], SYNC_US),
        "cuCtxSynchronize": (N["rt_dsync"] + N["drv_csync"], SYNC_US),
    }
    assert {f: calls[f]["count"] for f in calls} == {f: n for f, (n, _) in expect.items()}
    # latency, bounded on both sides: never below the call's sleep (a sleep never ends
    # early), never above the workload's own timing of the same calls
    times = workload_times(log)
    for func, (count, sleep_us) in expect.items():
        assert len(times[func]) == count
        assert none_faster(calls[func], sleep_us), (func, calls[func]["buckets"])
        assert within_workload_times(calls[func], times[func]), \
            (func, calls[func]["buckets"], sorted(times[func]))
    assert calls["cudaMemcpy"]["bytes"] == copied(N["rt_copy"])
    assert calls["cuMemcpyHtoD_v2"]["bytes"] == copied(N["rt_copy"]) + copied(N["drv_copy"])
    assert calls["cudaMalloc"]["bytes"] == N["rt_malloc"] * ALLOC_BYTES
    assert calls["cuMemAlloc_v2"]["bytes"] == (N["rt_malloc"] + N["drv_malloc"]) * ALLOC_BYTES
    assert calls["cudaMalloc"]["kind"] == "alloc" and calls["cuCtxSynchronize"]["kind"] == "sync"

    ioctls = {(r["device"], r["cmd"]): r for r in recs if r["type"] == "ioctl"}
    assert set(ioctls) == {("nvidiactl", NV_ESC_RM_CONTROL), ("nvidia-uvm", UVM_INITIALIZE)}
    ctl, uvm = ioctls["nvidiactl", NV_ESC_RM_CONTROL], ioctls["nvidia-uvm", UVM_INITIALIZE]
    assert (ctl["count"], ctl["errors"], ctl["name"]) == (N["ioctl_ctl"], N["ioctl_ctl"],
                                                          "NV_ESC_RM_CONTROL")
    assert (uvm["count"], uvm["name"]) == (N["ioctl_uvm"], "UVM_INITIALIZE")

    # Inside sync calls (nested runtime->driver sync counts once): every outer call sleeps
    # once, so at least that many off-CPU periods, summing to what schedstat says.
    waits = {r["type"]: r for r in recs if r["type"].startswith("sync_")}
    outer_syncs = N["rt_ssync"] + N["rt_dsync"] + N["drv_ssync"] + N["drv_csync"]
    offcpu = waits["sync_offcpu"]
    assert offcpu["count"] >= outer_syncs
    assert offcpu["total"] >= outer_syncs * SYNC_US
    assert abs(offcpu["total"] - offcpu_ns / 1000) <= 0.03 * offcpu_ns / 1000 + 500, \
        (offcpu["total"], offcpu_ns)
    # Run-queue latency against schedstat's run_delay: the tool counts from sched_wakeup, as
    # runqlat does, while run_delay misses a CPU's way out of idle (measured: 0 us in
    # schedstat against 8-20 us per wakeup here), hence a per-wakeup allowance on top of 10%.
    runq = waits.get("sync_runq", {"total": 0, "count": 0})
    assert runq["count"] <= offcpu["count"]
    assert abs(runq["total"] - run_delay_ns / 1000) <= \
        0.1 * run_delay_ns / 1000 + 60 * runq["count"], (runq["total"], run_delay_ns)


def test_text_output_with_comm_and_lib(fake_cuda):
    d, _ = fake_cuda
    with _gated(fake_cuda) as traced:
        tool = Running("gpulat", "-m", "--comm", "gpuwork", "--lib", d / "libcudart.so.12")
        tool.wait_attached()
        traced.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert "Tracing 5 CUDA functions in libcudart.so.12" in out
    assert f"\nPID {traced.pid} gpuwork\n" in out
    # only the runtime was probed: no driver functions, the runtime's counts in msecs
    assert re.search(r"\nfunction = cudaLaunchKernel \(launch\)  count = 30  avg = \d+ msecs\n",
                     out)
    assert "cuLaunchKernel" not in out
    assert "function = cudaMemcpy (copy)  count = 10" in out
    assert "ioctl = NV_ESC_RM_CONTROL (0xc020462a) on nvidiactl  count = 40  errors = 40" in out
    assert "in sync calls: off-CPU time" in out
    assert "     msecs               : count    distribution" in out


@pytest.mark.parametrize("argv", [["-p", "999999999"], ["--lib", "/no/such/libcuda.so.1"],
                                  ["--lib", "/bin/true"], ["--comm", ""], ["-p", "1", "--comm", "x"],
                                  ["--lib", "/bin/true", "0"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("gpulat", *argv)
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr
