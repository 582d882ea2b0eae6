"""C workloads for the profiling tests (gated, see workload.py): a CPU spinner with a known hot
function, a thread that sleeps a known total time, a pipe ping-pong with a named waker, and a
PIE executable + shared library that print their functions' run-time addresses."""
import subprocess

from workload import compile_c

FP = ["-fno-omit-frame-pointer", "-pthread"]

# spin_here burns argv[1] seconds of CPU time (process CPU time: the same work however busy
# the machine is); "done" reports the process's own CPU time over the spin (ns).
SPIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long ns(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }

__attribute__((noinline)) unsigned long spin_here(long long until)
{
	volatile unsigned long x = 0;
	do {
		for (int i = 0; i < 1000000; i++)
			x += i;
	} while (ns(CLOCK_PROCESS_CPUTIME_ID) < until);
	return x;
}

int main(int argc, char **argv)
{
	char line[64];
	long long cpu0;

	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	cpu0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	spin_here(cpu0 + (long long)(atof(argv[1]) * 1e9));
	printf("done %lld\n", ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
"""

# A thread sleeps argv[1] times argv[2] ms in nanosleep (sleep_here); "done TID TOTAL_NS"
# with the time it measured around the sleeps itself.
SLEEP = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static int n, ms, tid;
static long long total;

static long long ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }

__attribute__((noinline)) void sleep_here(void)
{
	struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
	long long t0 = ns();
	nanosleep(&d, NULL);
	total += ns() - t0;
}

static void *sleeper(void *arg)
{
	tid = syscall(SYS_gettid);
	for (int i = 0; i < n; i++)
		sleep_here();
	return NULL;
}

int main(int argc, char **argv)
{
	char line[64];
	pthread_t t;

	n = atoi(argv[1]); ms = atoi(argv[2]);
	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	pthread_create(&t, NULL, sleeper, NULL);
	pthread_join(t, NULL);
	printf("done %d %lld\n", tid, total); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
"""

# Thread "pinger" wakes thread "reader" argv[1] times through a pipe (wake_reader). Before each
# write it waits until the reader is asleep in its read (/proc/self/task/TID/syscall names a
# syscall only once the kernel has seen the thread off the CPU), then sleeps argv[2] ms: every
# read blocks, exactly once, for at least argv[2] ms, woken by the pinger's write, however
# slow or loaded the machine. "done" reports the reader's tid.
PING = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static int n, ms, fds[2];
static volatile int tid;

__attribute__((noinline)) void wake_reader(void) { write(fds[1], "x", 1); }

static void *reader(void *arg)
{
	char c;
	pthread_setname_np(pthread_self(), "reader");
	tid = syscall(SYS_gettid);
	for (int i = 0; i < n; i++)
		read(fds[0], &c, 1);
	return NULL;
}

static int reader_asleep(void)
{
	char path[64], state[32] = "running";
	FILE *f;

	if (!tid)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(state, sizeof(state), f))
		strcpy(state, "running");
	fclose(f);
	return strncmp(state, "running", 7) != 0;
}

int main(int argc, char **argv)
{
	char line[64];
	struct timespec d, poll = { 0, 1000000L };
	pthread_t t;

	n = atoi(argv[1]); ms = atoi(argv[2]);
	d.tv_sec = 0; d.tv_nsec = ms * 1000000L;
	pipe(fds);
	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	pthread_setname_np(pthread_self(), "pinger");
	pthread_create(&t, NULL, reader, NULL);
	for (int i = 0; i < n; i++) {
		while (!reader_asleep())
			nanosleep(&poll, NULL);
		nanosleep(&d, NULL);
		wake_reader();
	}
	pthread_join(t, NULL);
	printf("done %d\n", tid); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
"""

LIB = r"""
__attribute__((noinline)) int lib_func(int x) { return x * 3 + 1; }
"""

# "done ADDR_OF_exe_func ADDR_OF_lib_func" (run-time addresses, PIE and shared library).
ADDRS = r"""
#include <stdio.h>
int lib_func(int x);
__attribute__((noinline)) int exe_func(int x) { return lib_func(x) + 2; }
int main(void)
{
	char line[64];
	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	printf("done %p %p %d\n", (void *)exe_func, (void *)lib_func, exe_func(1)); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
"""


def build(source, directory, name):
    return compile_c(source, directory, name, flags=FP)


def build_addrs(directory):
    """The ADDRS executable linked against libaddrs.so in directory."""
    (directory / "lib.c").write_text(LIB)
    subprocess.run(["gcc", "-O1", "-fPIC", "-shared", "-o", str(directory / "libaddrs.so"),
                    str(directory / "lib.c")], check=True, capture_output=True)
    return compile_c(ADDRS, directory, "addrs",
                     flags=[f"-L{directory}", "-laddrs", f"-Wl,-rpath,{directory}"])

# Two threads each spin argv[1] seconds of their own CPU time four calls deep: main ->
# level1..level4, and a pthread worker -> worker1..worker4. Built without frame pointers
# (NO_FP), as distribution packages are, so only .eh_frame can unwind it.
DEEP = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds;
volatile unsigned long sink;

static long long thread_ns(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }

#define CHAIN(a, b, c, d) \
__attribute__((noinline)) void d(long long until) { unsigned long x = 0; do { for (int i = 0; i < 100000; i++) x += i * 7; sink = x; } while (thread_ns() < until); } \
__attribute__((noinline)) void c(long long until) { d(until); sink++; } \
__attribute__((noinline)) void b(long long until) { c(until); sink++; } \
__attribute__((noinline)) void a(long long until) { b(until); sink++; }

CHAIN(level1, level2, level3, level4)
CHAIN(worker1, worker2, worker3, worker4)

static void *worker(void *arg) { worker1(thread_ns() + (long long)(seconds * 1e9)); return NULL; }

int main(int argc, char **argv)
{
	char line[64];
	pthread_t t;

	seconds = atof(argv[1]);
	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	pthread_create(&t, NULL, worker, NULL);
	level1(thread_ns() + (long long)(seconds * 1e9));
	pthread_join(t, NULL);
	printf("done\n"); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
"""
NO_FP = ["-O2", "-fomit-frame-pointer", "-pthread"]
