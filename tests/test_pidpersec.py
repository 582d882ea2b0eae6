"""pidpersec against the kernel's own fork counter (/proc/stat `processes`) and the workload's
forks and threads."""
import json
import os
import threading

import pytest

from helpers import Running, assert_released, bpf_objects_of

pytestmark = pytest.mark.bpf


def forks_so_far():
    with open("/proc/stat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("processes "))


def test_counts_every_fork_and_thread_the_kernel_counts():
    """Every new task while attached is counted: at least the workload's 150 forks and 50
    threads, at most what /proc/stat counted from before the start to after the stop."""
    before = forks_so_far()
    tool = Running("pidpersec", "--json").wait_attached()
    held = bpf_objects_of(tool.proc.pid)
    for _ in range(150):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    threads = [threading.Thread(target=lambda: None) for _ in range(50)]
    for t in threads:
        t.start()
        t.join()
    rc, out, err = tool.stop()
    after = forks_so_far()
    assert rc == 0, err
    assert_released(held)
    counted = sum(json.loads(line)["forks"] for line in out.splitlines())
    assert 200 <= counted <= after - before, (counted, after - before)
