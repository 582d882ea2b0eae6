"""filelife against a workload that creates and deletes files after known delays, by relative,
absolute and dirfd-relative paths: one record per file both created and deleted while traced,
its age inside the workload's own clock readings around the two calls (the same clock:
CLOCK_MONOTONIC); files that existed before, or are never deleted, are not reported."""
import pytest

from toolrun import assert_usage_error, trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import ctypes, os, time
d = sys.argv[1]
os.chdir(d)
libc = ctypes.CDLL(None, use_errno=True)
spans = []
def life(create, delete, delay):
    t0 = time.monotonic_ns()
    create()
    t1 = time.monotonic_ns()
    time.sleep(delay)
    t2 = time.monotonic_ns()
    delete()
    t3 = time.monotonic_ns()
    spans.append(f"{t2 - t1}:{t3 - t0}")
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
life(lambda: os.close(os.open("rel.tmp", os.O_CREAT | os.O_WRONLY)),
     lambda: os.unlink("rel.tmp"), 0.05)
life(lambda: os.close(libc.creat(os.path.join(d, "abs.tmp").encode(), 0o600)),
     lambda: os.unlink(os.path.join(d, "abs.tmp")), 0.3)
life(lambda: os.close(os.open("at.tmp", os.O_CREAT | os.O_EXCL | os.O_WRONLY, dir_fd=dfd)),
     lambda: os.unlink("at.tmp", dir_fd=dfd), 0.15)
os.close(os.open("old.tmp", os.O_CREAT | os.O_WRONLY))  # existed before: opened, not created
os.unlink("old.tmp")
open("kept.tmp", "w").close()  # created, never deleted
result = " ".join(spans)
"""


def test_ages_within_the_workloads_own_timing(tmp_path):
    (tmp_path / "old.tmp").write_text("")
    recs, spans, pid = trace_gated("filelife", work=WORK, work_args=[tmp_path])
    mine = [r for r in recs if r["pid"] == pid]
    assert [r["file"] for r in mine] == ["rel.tmp", str(tmp_path / "abs.tmp"), "at.tmp"], mine
    for r, span in zip(mine, spans):
        at_least, at_most = map(int, span.split(":"))
        # created at open's return, deleted at unlink's: after the workload's reading at
        # open's return and before its reading at unlink's call, and inside the whole span
        assert at_least <= r["age_ns"] <= at_most, (r, span)
        assert r["creator"] == pid and r["comm"].startswith("python")


def test_bad_input():
    assert "no process" in assert_usage_error("filelife", "-p", "4194303")
