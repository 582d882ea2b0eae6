"""oomkill cross-checked against a memory cgroup's own OOM-kill counter and the victim's
SIGKILL exit status: a child is confined to a small memory limit and allocates past it."""
import os
import signal
import subprocess
import sys
import uuid

import pytest

from helpers import Running
from toolrun import assert_usage_error, records

pytestmark = pytest.mark.bpf

LIMIT = 48 << 20
HOG = "b = []\nwhile True:\n    b.append(b'x' * (1 << 20))  # touched, so resident\n"


class MemoryCgroup:
    """A fresh memory cgroup with a hard limit, on v1 (memory controller mounted on its own)
    or v2 (memory enabled in the unified root); removed on exit."""

    V1, V2 = "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"

    def __init__(self, limit):
        name = "bpfsight-oomkill-" + uuid.uuid4().hex[:8]
        if os.path.exists(os.path.join(self.V1, "memory.limit_in_bytes")):
            self.path, self.v2 = os.path.join(self.V1, name), False
        elif "memory" in self._read(os.path.join(self.V2, "cgroup.subtree_control")):
            self.path, self.v2 = os.path.join(self.V2, name), True
        else:
            pytest.skip("no memory cgroup controller (v1 or v2) to confine the test")
        os.mkdir(self.path)
        self._write("memory.max" if self.v2 else "memory.limit_in_bytes", limit)

    @staticmethod
    def _read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def oom_kills(self):
        """The kernel's own count of OOM kills in this cgroup."""
        text = self._read(os.path.join(self.path, "memory.events" if self.v2 else
                                       "memory.oom_control"))
        return dict(line.split() for line in text.splitlines())["oom_kill"]

    def join(self):
        """preexec_fn: move the child into the cgroup before it execs."""
        self._write("cgroup.procs", os.getpid())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.rmdir(self.path)


def run_hog(cg, *tool_args):
    """The hog in the cgroup under `oomkill ...`; (hog Popen, tool output, cgroup kill count)."""
    tool = Running("oomkill", *tool_args).wait_attached()
    hog = subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=cg.join)
    hog.wait(timeout=60)
    rc, out, err = tool.stop()
    assert rc == 0, err
    return hog, out, int(cg.oom_kills())


def test_victim_matches_cgroup_counter_and_exit_status():
    with MemoryCgroup(LIMIT) as cg:
        hog, out, kills = run_hog(cg, "--json")
    assert hog.returncode == -signal.SIGKILL
    victims = [e for e in records(out) if e["kpid"] == hog.pid]
    assert kills == 1 and len(victims) == kills
    v = victims[0]
    # the hog alone was in the cgroup: its own allocation triggered the kill
    assert v["tpid"] == hog.pid and v["kcomm"] == v["tcomm"] and v["kcomm"].startswith("python")
    # killed for going past the limit: most of that was its anonymous memory (the kernel's rss
    # counters are per-CPU approximations: allow 1 MiB over)
    assert LIMIT // 2 <= v["anon_rss_kb"] * 1024 <= LIMIT + (1 << 20)
    assert v["rss_pages"] * os.sysconf("SC_PAGE_SIZE") >= v["anon_rss_kb"] * 1024


def test_terminal_line():
    with MemoryCgroup(LIMIT) as cg:
        hog, out, _ = run_hog(cg)
    line = next(ln for ln in out.splitlines() if f"OOM kill of PID {hog.pid} " in ln)
    assert f'Triggered by PID {hog.pid} ("python' in line
    assert " pages rss, loadavg: " in line


def test_bad_arguments():
    assert_usage_error("oomkill", "--bogus")
