import json
import re

import pytest

from helpers import Running, run_bpfsight
from workload import Gated, compile_c

pytestmark = pytest.mark.bpf

K, SLEEP_US = 25, 20000

# target_fn sleeps SLEEP_US and is called exactly argv[1] times once the gate opens; the
# program times each call itself (CLOCK_MONOTONIC, the clock BPF reads) and prints
# "done K" then each call's duration in µs.
SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noinline)) void target_fn(void) { usleep(%d); }

int main(int argc, char **argv)
{
	int i, k = atoi(argv[1]);
	long long t0, took[1000];
	char line[64];

	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	for (i = 0; i < k; i++) {
		t0 = now_ns();
		target_fn();
		took[i] = now_ns() - t0;
	}
	printf("done %%d", k);
	for (i = 0; i < k; i++)
		printf(" %%lld", took[i] / 1000);
	printf("\n"); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
""" % SLEEP_US


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return compile_c(SOURCE, tmp_path_factory.mktemp("funclat"))


def slot(us):
    """The log2 slot a value in µs (or ms) falls in: slot 0 holds 0 and 1."""
    return max(int(us).bit_length() - 1, 0)


def assert_hist_between(counts, lower, upper):
    """counts: {slot: count}. Each call's value v obeys lower <= v <= upper[i] (lower: the
    sleep, never cut short; upper: the workload's own clock around the call, which encloses
    the probes' window on the same clock). So every count sits at or above lower's slot, and
    for every slot s at least as many calls fall at or below s as the workload's clock put
    there: exact on any machine, however slow or loaded."""
    assert sum(counts.values()) == len(upper)
    assert all(s >= slot(lower) for s, n in counts.items() if n), (counts, lower)
    for s in range(slot(max(upper)) + 1):
        at_most = sum(n for t, n in counts.items() if t <= s)
        assert at_most >= sum(1 for u in upper if slot(u) <= s), (s, counts, upper)


def test_exact_count_and_bucket_of_a_known_sleep(binary):
    with Gated([binary, str(K)]) as traced, Gated([binary, "7"]) as other:
        tool = Running("funclatency", "-u", "-p", traced.pid, "--json",
                       f"{binary}:target_fn").wait_attached()
        other.run()  # the same function in another process: -p must leave it out
        k, *took_us = traced.run()
        rc, out, err = tool.stop()
    assert k == str(K)
    took_us = [int(t) for t in took_us]
    assert rc == 0, err
    rec = json.loads(out.splitlines()[-1])
    assert rec["count"] == K
    assert rec["unit"] == "usecs" and rec["function"] == "target_fn"
    assert_hist_between({slot(b["low"]): b["count"] for b in rec["buckets"]}, SLEEP_US, took_us)
    # usleep never returns early; each call takes no longer than the workload's clock saw
    assert SLEEP_US <= rec["mean"] <= sum(took_us) / K + 1, (rec["mean"], took_us)


def test_text_output_like_bcc(binary):
    with Gated([binary, "3"]) as traced:
        tool = Running("funclatency", "-m", "-p", traced.pid, f"{binary}:target_fn")
        tool.wait_attached()
        _, *took_us = traced.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert "msecs" in out and "count: 3" in out and "Detaching..." in out
    rows = re.findall(r"^\s*(\d+) -> (\d+)\s+: (\d+)", out, re.M)
    counts = {slot(int(low)): int(n) for low, _, n in rows}
    assert_hist_between(counts, SLEEP_US // 1000, [int(t) // 1000 for t in took_us])


@pytest.mark.parametrize("argv", [["vfs_read"], ["c:"], ["nosuchlib:foo"],
                                  ["c:no_such_function_here"], ["-i", "0", "c:read"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("funclatency", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
