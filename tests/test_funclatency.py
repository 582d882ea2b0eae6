import json

import pytest

from helpers import Running, run_bpfsight
from workload import Gated, compile_c

pytestmark = pytest.mark.bpf

K, SLEEP_US = 25, 20000

# target_fn sleeps SLEEP_US and is called exactly argv[1] times once the gate opens.
SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) void target_fn(void) { usleep(%d); }

int main(int argc, char **argv)
{
	int i, k = atoi(argv[1]);
	char line[64];

	printf("ready\n"); fflush(stdout);
	fgets(line, sizeof(line), stdin);
	for (i = 0; i < k; i++)
		target_fn();
	printf("done %%d\n", k); fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
""" % SLEEP_US


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return compile_c(SOURCE, tmp_path_factory.mktemp("funclat"))


def test_exact_count_and_bucket_of_a_known_sleep(binary):
    with Gated([binary, str(K)]) as traced, Gated([binary, "7"]) as other:
        tool = Running("funclatency", "-u", "-p", traced.pid, "--json",
                       f"{binary}:target_fn").wait_attached()
        other.run()  # the same function in another process: -p must leave it out
        assert traced.run() == [str(K)]
        rc, out, err = tool.stop()
    assert rc == 0, err
    rec = json.loads(out.splitlines()[-1])
    assert rec["count"] == K
    assert rec["unit"] == "usecs" and rec["function"] == "target_fn"
    # usleep never returns early; the busy machine may stretch some calls, never most of them
    modal = max(rec["buckets"], key=lambda b: b["count"])
    assert (modal["low"], modal["high"]) == (16384, 32767)
    assert all(b["count"] == 0 for b in rec["buckets"] if b["high"] < SLEEP_US)
    assert SLEEP_US <= rec["mean"] < 1.5 * SLEEP_US


def test_text_output_like_bcc(binary):
    with Gated([binary, "3"]) as traced:
        tool = Running("funclatency", "-m", "-p", traced.pid, f"{binary}:target_fn")
        tool.wait_attached()
        traced.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert "msecs" in out and "count: 3" in out and "Detaching..." in out
    assert "16 -> 31         : 3" in out


@pytest.mark.parametrize("argv", [["vfs_read"], ["c:"], ["nosuchlib:foo"],
                                  ["c:no_such_function_here"], ["-i", "0", "c:read"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("funclatency", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
