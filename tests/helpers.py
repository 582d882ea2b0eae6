"""Test helpers: run bpfsight as a user would (a subprocess), wait until it is attached, and
find the BPF programs, maps and links a process holds (to prove nothing is left behind)."""
import os
import re
import select
import signal
import subprocess
import sys
import time

BPFSIGHT = [sys.executable, "-m", "bpfsight"]
BANNER = re.compile(r"Tracing|Hit Ctrl-C|^PCOMM|^TIME|^UID|^PID|^COMM|^TID|^SKADDR|^Attaching to|^FUNC ", re.M)


def run_bpfsight(*args, timeout=60, **kw):
    """Run to completion; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(BPFSIGHT + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kw)


class Running:
    """A bpfsight tool started in the background; `wait_attached()` returns once it printed its
    banner (which every tool prints only after attaching). One a test leaves running (it
    failed before stopping it) is stopped after the test (conftest), so it cannot weigh on the
    tests after it."""

    started = []

    def __init__(self, *args):
        self.proc = subprocess.Popen(BPFSIGHT + [str(a) for a in args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.stdout = b""
        self.stderr = b""
        Running.started.append(self)

    @classmethod
    def stop_leftovers(cls):
        for tool in cls.started:
            if tool.proc.poll() is None:
                tool.proc.kill()
                tool.proc.communicate(timeout=30)
        cls.started.clear()

    def _pump(self, timeout):
        streams = [s for s in (self.proc.stdout, self.proc.stderr) if s and not s.closed]
        ready, _, _ = select.select(streams, [], [], timeout)
        for s in ready:
            chunk = os.read(s.fileno(), 65536)
            if s is self.proc.stdout:
                self.stdout += chunk
            else:
                self.stderr += chunk
        return bool(ready)

    def wait_attached(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if BANNER.search((self.stdout + self.stderr).decode(errors="replace")):
                return self
            if self.proc.poll() is not None:
                self._pump(0.1)
                raise AssertionError(f"tool exited early ({self.proc.returncode}): "
                                     f"{self.stderr.decode(errors='replace')}")
            self._pump(0.2)
        raise AssertionError(f"tool did not attach in {timeout}s: {self.stderr!r}")

    def stop(self, sig=signal.SIGINT, timeout=30):
        """Send sig, collect all output; returns (returncode, stdout, stderr) as text."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        self.stdout += out or b""
        self.stderr += err or b""
        return (self.proc.returncode, self.stdout.decode(errors="replace"),
                self.stderr.decode(errors="replace"))


def bpf_objects_of(pid):
    """{'prog': ids, 'map': ids, 'link': ids} held by process pid (from /proc/PID/fdinfo)."""
    found = {"prog": set(), "map": set(), "link": set()}
    base = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(base):
        try:
            with open(os.path.join(base, fd)) as f:
                text = f.read()
        except OSError:
            continue
        for kind in found:
            m = re.search(rf"^{kind}_id:\s*(\d+)", text, re.M)
            if m:
                found[kind].add(int(m.group(1)))
    return found


def bpf_object_alive(kind, obj_id):
    return subprocess.run(["bpftool", kind, "show", "id", str(obj_id)],
                          capture_output=True).returncode == 0


def assert_released(held, timeout=3.0):
    """Every prog/map/link id in held is gone from the kernel (maps are freed after an RCU
    grace period, hence the short wait)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [(k, i) for k, ids in held.items() for i in ids if bpf_object_alive(k, i)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not alive, f"left in the kernel after exit: {alive}"


class CpuHogs:
    """n busy-looping processes, stopped on exit."""

    def __init__(self, n):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(n)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def schedstat(pid):
    """(on-CPU ns, run-queue wait ns, times it got a CPU) summed over the process's threads:
    the kernel's own accounting, /proc/PID/task/TID/schedstat."""
    total = [0, 0, 0]
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                fields = f.read().split()
        except FileNotFoundError:  # the thread has exited
            continue
        for i in range(3):
            total[i] += int(fields[i])
    return tuple(total)


def wait_blocked(pid, timeout=60):
    """Until pid is switched out and asleep in a syscall. /proc/PID/syscall answers "running"
    until the kernel's wait_task_inactive() has seen the task off the CPU and off the run
    queue; then it names the syscall it sleeps in. A condition, not a delay: it returns as
    soon as the task has blocked, however long that takes on this machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/syscall") as f:
            if f.read().split()[0] != "running":
                return
        time.sleep(0.005)
    raise AssertionError(f"{pid} did not block in {timeout}s")
