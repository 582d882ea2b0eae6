"""cachestat, filtered to one reader process, cross-checked against the file it reads: a cold
read (the file's pages dropped with posix_fadvise first) misses about every page, a warm re-read
of the same file hits about every page."""
import json
import os

import pytest

from blockdev import GatedChild
from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf

FILE_PAGES = 1024  # 4 MiB of 4 KiB pages
READ_ALL = """
import os
fd = os.open({path!r}, os.O_RDONLY)
while os.read(fd, 128 * 1024):
    pass
os.close(fd)
"""


@pytest.fixture
def cold_file(tmp_path):
    """A file on a disk-backed file system (tmpfs reads bypass these tracepoints), written,
    synced and dropped from the page cache."""
    path = tmp_path / "data"
    with open(path, "wb") as f:
        f.write(os.urandom(FILE_PAGES * os.sysconf("SC_PAGE_SIZE")))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return str(path)


def read_traced(path):
    """cachestat -p for a child that reads path once; the summed interval records."""
    with GatedChild(READ_ALL.format(path=path)) as child:
        tool = Running("cachestat", "--json", "-p", child.pid, "1").wait_attached()
        child.go()
        rc, out, err = tool.stop()
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    total = {k: sum(r[k] for r in rows) for k in ("hits", "misses", "accessed", "added")}
    total["hit_ratio"] = total["hits"] / total["accessed"] if total["accessed"] else 0.0
    return total


def test_cold_then_warm_read(cold_file):
    cold = read_traced(cold_file)
    assert abs(cold["misses"] - FILE_PAGES) <= 0.05 * FILE_PAGES, cold
    assert cold["hit_ratio"] < 0.05, cold
    warm = read_traced(cold_file)
    # the reader's own other file accesses (e.g. a lazily imported module) may add a few pages
    assert warm["misses"] <= 0.01 * FILE_PAGES and warm["added"] <= 0.01 * FILE_PAGES, warm
    assert abs(warm["hits"] - FILE_PAGES) <= 0.05 * FILE_PAGES, warm
    assert warm["hit_ratio"] > 0.95, warm


def test_text_columns():
    res = run_bpfsight("cachestat", "-T", "1", "1")
    assert res.returncode == 0, res.stderr
    header, row = res.stdout.splitlines()[-2:]
    assert header.split() == ["TIME", "HITS", "MISSES", "DIRTIES", "HITRATIO", "BUFFERS_MB",
                              "CACHED_MB"]
    assert len(row.split()) == 7 and row.split()[4].endswith("%")


@pytest.mark.parametrize("args", [["0"], ["1", "-1"], ["-p", "999999999"], ["-c", "/nope"]],
                         ids=str)
def test_bad_arguments(args):
    res = run_bpfsight("cachestat", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_written_pages_are_dirties_not_misses(tmp_path):
    path = str(tmp_path / "new")
    code = (f"import os\nfd = os.open({path!r}, os.O_WRONLY | os.O_CREAT)\n"
            f"os.write(fd, b'x' * {FILE_PAGES * os.sysconf('SC_PAGE_SIZE')})\nos.close(fd)")
    with GatedChild(code) as child:
        tool = Running("cachestat", "--json", "-p", child.pid, "1").wait_attached()
        child.go()
        rc, out, err = tool.stop()
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    dirties = sum(r["dirties"] for r in rows)
    assert abs(dirties - FILE_PAGES) <= 0.05 * FILE_PAGES, rows
    assert sum(r["misses"] for r in rows) == 0, rows
