"""hardirqs cross-checked against /proc/interrupts over the same window, while the test makes
block device interrupts with O_DIRECT disk reads."""
import mmap
import os

import pytest

from helpers import run_bpfsight
from irqcounters import assert_counts_match, window

pytestmark = pytest.mark.bpf


def proc_interrupts():
    """{handler names: count summed over CPUs} for the numbered IRQ lines."""
    counts = {}
    with open("/proc/interrupts") as f:
        ncpus = len(f.readline().split())
        for line in f:
            irq, _, rest = line.partition(":")
            if not irq.strip().isdigit():
                continue  # LOC, RES, ...: no irqaction, not traced
            fields = rest.split()
            # columns: per-CPU counts, chip, hwirq-type, then the handler names
            counts[" ".join(fields[ncpus + 2:])] = sum(int(n) for n in fields[:ncpus])
    return counts


def disk_reads(directory, n=2000):
    """n 4 KiB O_DIRECT reads: each goes to the device, none to the page cache."""
    path = os.path.join(directory, "irqs.dat")
    with open(path, "wb") as f:
        f.write(b"\1" * (4 << 20))
        os.fsync(f.fileno())
    buf = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT needs
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        for i in range(n):
            os.preadv(fd, [buf], (i * 7919 % 1024) * 4096)
    finally:
        os.close(fd)


def has_disk_irq(compared):
    return any(kind in name for name in compared for kind in ("virtio", "nvme", "ahci", "ata"))


@pytest.mark.parametrize("mode", [["-C"], []], ids=["count", "time"])
def test_hardirq_counts_match_proc_interrupts(tmp_path, mode):
    inner, outer, recs = window(["hardirqs", *mode], proc_interrupts,
                                lambda: disk_reads(tmp_path))
    measured = {r["hardirq"]: r["count"] for r in recs}
    assert_counts_match(inner, outer, measured, has_disk_irq)
    if not mode:
        assert all(r["total_ns"] > 0 for r in recs)


def test_terminal_output_is_bcc_shaped():
    rc = run_bpfsight("hardirqs", "-C", "1", "1")
    assert rc.returncode == 0, rc.stderr
    lines = rc.stdout.splitlines()
    assert lines[0] == "Tracing hard irq events... Hit Ctrl-C to end."
    assert lines[2] == "%-26s %11s" % ("HARDIRQ", "TOTAL_count")


@pytest.mark.parametrize("args", [["-C", "-d"], ["-C", "-N"], ["-c", "4096"], ["-c", "x"],
                                  ["0"], ["1", "0"]])
def test_bad_arguments_are_one_line_exit_2(args):
    rc = run_bpfsight("hardirqs", *args)
    assert rc.returncode == 2
    assert len(rc.stderr.strip().splitlines()) == 1, rc.stderr
