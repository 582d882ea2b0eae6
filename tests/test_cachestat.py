"""cachestat, filtered to one reader process, cross-checked against the file it reads: a cold
read (the file's pages dropped with posix_fadvise first) adds every page of the file to the
cache, a warm re-read of the same file (its pages locked in memory) adds none."""
import contextlib
import ctypes
import json
import mmap
import os

import pytest

from blockdev import GatedChild
from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf

FILE_PAGES = 1024  # 4 MiB of 4 KiB pages
# The file system's metadata (inode table, bitmaps, group descriptors, directory blocks) lives
# in the block device's page cache: a create, or the atime update of a file's first read, may
# dirty or read in a few of those pages in the caller's context, or leave it to the journal
# thread, depending on whether the journal already committed them (timing, not the tool). One
# create or atime update touches fewer than 16 such blocks.
METADATA_PAGES = 16
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


def summed(rows):
    """The raw page counts summed over the intervals, with BCC's arithmetic (see
    bpfsight.tools.cachestat.ratios) applied to the sums: the per-interval hits and misses
    depend on where an interval boundary falls (pages read ahead in one interval and read in
    the next move between them), which is timing, not the tool."""
    total = {k: sum(r[k] for r in rows) for k in ("accessed", "added", "dirties")}
    total["misses"] = max(0, total["added"] - total["dirties"])
    total["hits"] = total["accessed"] - total["misses"]
    total["hit_ratio"] = total["hits"] / total["accessed"] if total["accessed"] else 0.0
    return total


def traced(code):
    """cachestat -p for a child that runs code (after its start-up: see GatedChild); the
    interval records summed."""
    with GatedChild(code) as child:
        tool = Running("cachestat", "--json", "-p", child.pid, "1").wait_attached()
        child.go()
        rc, out, err = tool.stop()
    assert rc == 0, err
    return summed([json.loads(line) for line in out.splitlines()])


def read_traced(path):
    return traced(READ_ALL.format(path=path))


@contextlib.contextmanager
def locked_in_cache(path):
    """The file's pages read in and locked (mlock of a shared read-only mapping: the page
    cache pages themselves), so no memory pressure from anything else on the machine can evict
    them while the block runs."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mlock.argtypes = libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            assert libc.mlock(addr, size) == 0, os.strerror(ctypes.get_errno())
            yield
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def test_cold_then_warm_read(cold_file):
    # The child reads nothing but the file (its start-up is over before the tool attaches), so
    # the additions are the file's own pages, plus a few metadata pages: a cold read adds each
    # of the file's pages, none twice unless memory pressure reclaims a page between its
    # readahead and its copy (allowed: 1%). Accesses are counted from the ranges each read()
    # asks the cache for, every page at least once; a range asked for again (a retry after
    # waiting on a page under I/O) counts again, the tool's documented approximation
    # (allowed: 5%).
    cold = read_traced(cold_file)
    assert FILE_PAGES <= cold["added"] <= 1.01 * FILE_PAGES + METADATA_PAGES, cold
    assert cold["dirties"] <= METADATA_PAGES, cold  # the atime update, at most
    assert FILE_PAGES <= cold["accessed"] <= 1.05 * FILE_PAGES, cold
    assert cold["misses"] >= FILE_PAGES - METADATA_PAGES and cold["hit_ratio"] < 0.05, cold
    # warm: every page is locked in the cache, so the re-read adds none: exactly no misses
    with locked_in_cache(cold_file):
        warm = read_traced(cold_file)
    assert warm["added"] <= METADATA_PAGES and warm["misses"] <= METADATA_PAGES, warm
    assert FILE_PAGES <= warm["hits"] <= 1.05 * FILE_PAGES, warm
    assert warm["hit_ratio"] >= 1 - METADATA_PAGES / FILE_PAGES, warm


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
    total = traced(code)
    # one write of a new file: each page is added to the cache and dirtied once (a page
    # written back while the write goes on is not written again, so not dirtied again), plus
    # the create's few metadata pages
    assert FILE_PAGES <= total["dirties"] <= FILE_PAGES + METADATA_PAGES, total
    assert FILE_PAGES <= total["added"] <= FILE_PAGES + METADATA_PAGES, total
    assert total["misses"] <= METADATA_PAGES, total  # not the 1024 pages written
