// SPDX-License-Identifier: GPL-2.0
/* The workloads of bench/run.py, one binary:
 *   workloads getppid N [RATE]   N getppid() calls, at most RATE per second (0: flat out)
 *   workloads pingpong N         N round trips of one byte between two processes over pipes
 *   workloads odirect DEV N      N 4 KiB O_DIRECT writes to DEV
 *   workloads spin N             N million iterations of a loop in user space (no syscalls)
 * Each waits for a line on stdin (so a tracer can attach to its pid first), works, and prints
 * "ops N ns T" (T: wall time of the work in ns). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void getppid_loop(long n, double rate)
{
	long long t0 = now_ns(), batch = 256;

	for (long i = 0; i < n; i += batch) {
		for (long j = 0; j < batch && i + j < n; j++)
			getppid();
		if (rate > 0)  /* pace in batches: clock_gettime is a vDSO call, not a syscall */
			while (now_ns() - t0 < (i + batch) * 1e9 / rate)
				;
	}
}

static void pingpong(long n)
{
	int ab[2], ba[2];
	char c = 'x';
	pid_t child;

	if (pipe(ab) || pipe(ba))
		exit(1);
	child = fork();
	if (child == 0) {
		for (long i = 0; i < n; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				exit(1);
		exit(0);
	}
	for (long i = 0; i < n; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			exit(1);
	waitpid(child, NULL, 0);
}

static void odirect(const char *dev, long n)
{
	void *buf;
	int fd = open(dev, O_WRONLY | O_DIRECT);

	if (fd < 0 || posix_memalign(&buf, 4096, 4096))
		exit(1);
	memset(buf, 'x', 4096);
	for (long i = 0; i < n; i++)
		if (pwrite(fd, buf, 4096, (i % 4096) * 4096) != 4096)
			exit(1);
	close(fd);
}

static void spin(long n)
{
	volatile unsigned long x = 0;

	for (long i = 0; i < n * 1000000; i++)
		x += i;
}

int main(int argc, char **argv)
{
	char line[64];
	long long t0, t1;
	long n;

	if (argc < 3)
		return 2;
	n = atol(argv[strcmp(argv[1], "odirect") ? 2 : 3]);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	t0 = now_ns();
	if (!strcmp(argv[1], "getppid"))
		getppid_loop(n, argc > 3 ? atof(argv[3]) : 0);
	else if (!strcmp(argv[1], "pingpong"))
		pingpong(n);
	else if (!strcmp(argv[1], "odirect"))
		odirect(argv[2], n);
	else if (!strcmp(argv[1], "spin"))
		spin(n);
	else
		return 2;
	t1 = now_ns();
	printf("ops %ld ns %lld\n", n, t1 - t0);
	return 0;
}
