import json

import pytest

from helpers import Running, run_bpfsight
from workload import Gated, compile_c

pytestmark = pytest.mark.bpf

THREADS, SECONDS = 4, "1.0"

# THREADS threads take one pthread mutex in a loop for SECONDS, each timing its own
# pthread_mutex_lock calls; the program prints the summed wait and the mutex's address.
SOURCE = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double run_s;
static long long waited_ns[64];

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noinline)) static void hold_a_while(void)
{
	volatile int i;
	for (i = 0; i < 200000; i++)
		;
}

static void *worker(void *arg)
{
	long idx = (long)arg;
	long long end = now_ns() + (long long)(run_s * 1e9), t0;

	while (now_ns() < end) {
		t0 = now_ns();
		pthread_mutex_lock(&lock);
		waited_ns[idx] += now_ns() - t0;
		hold_a_while();
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = atoi(argv[1]), i;
	pthread_t t[64];
	long long total = 0;

	run_s = atof(argv[2]);
	printf("ready\n"); fflush(stdout);
	getchar();
	for (i = 0; i < n; i++)
		pthread_create(&t[i], NULL, worker, (void *)(long)i);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < n; i++)
		total += waited_ns[i];
	printf("done %lld %p\n", total, (void *)&lock); fflush(stdout);
	while (getchar() != EOF)
		;
	return 0;
}
"""


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return compile_c(SOURCE, tmp_path_factory.mktemp("lockstat"), flags=["-lpthread"])


def run_contention(binary, *tool_args):
    with Gated([binary, str(THREADS), SECONDS]) as wl:
        tool = Running("lockstat", "-p", wl.pid, *tool_args).wait_attached()
        waited_ns, addr = wl.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    return wl.pid, int(waited_ns), int(addr, 16), out


def test_mutex_wait_matches_the_programs_own_measure(binary):
    pid, waited_ns, addr, out = run_contention(binary, "-a", "--json")
    recs = [json.loads(line) for line in out.splitlines()]
    mutex, = [r for r in recs if r["kind"] == "futex" and r["addr"] == addr]
    assert mutex["pid"] == pid and mutex["contended"] > 0 and mutex["type"] == "wait"
    # pthread_mutex_lock sleeps in FUTEX_WAIT on the mutex word; what it spends outside the
    # syscall (atomics, re-checks) is small next to the sleeps
    assert 0.7 * waited_ns <= mutex["total_ns"] <= 1.05 * waited_ns + 5e6, (mutex, waited_ns)
    assert mutex["max_ns"] <= mutex["total_ns"]
    # the other futex waits of the process (pthread_join) are told apart by address
    assert all(r["addr"] != addr for r in recs if r is not mutex)


def test_text_sections_by_caller(binary):
    pid, waited_ns, addr, out = run_contention(binary, "-s", "3")
    assert "Kernel lock contention:" in out
    assert "User futex waits" in out
    header = next(line for line in out.splitlines() if "caller" in line and "pid" in line)
    assert header.split()[:4] == ["contended", "total", "wait", "max"]
    rows = [line for line in out.splitlines() if f" {pid} " in line and " wait " in line]
    assert rows, out


@pytest.mark.parametrize("argv", [["-a", "-t"], ["-K", "-U"], ["-E", "0"], ["-p", "x"],
                                  ["-c", "/nonexistent"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("lockstat", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
