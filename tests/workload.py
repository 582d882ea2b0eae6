"""Workloads for cross-check tests: small C programs compiled per test, and a gated process
protocol so a tool can attach (with -p PID) before the work starts:

    the workload prints "ready", waits for a line on stdin, works, prints "done <figures...>",
    then waits for stdin to close before exiting (its /proc entry stays readable meanwhile).
"""
import subprocess
import sys
import time


def compile_c(source, directory, name="workload", flags=()):
    """Build `source` (C text) into directory/name with gcc; returns the binary's path."""
    src = directory / f"{name}.c"
    src.write_text(source)
    binary = directory / name
    subprocess.run(["gcc", "-O1", "-g", "-fno-inline", "-o", str(binary), str(src), *flags],
                   check=True, capture_output=True, text=True)
    return str(binary)


# Python workloads run `python -c PYTHON_GATE.format(work=...)`; work sets `result` (a string).
PYTHON_GATE = """
import sys
print("ready", flush=True)
sys.stdin.readline()
{work}
print("done", result, flush=True)
sys.stdin.read()
"""


class Gated:
    """A gated workload process (see module doc). Use as a context manager."""

    def __init__(self, argv, **kw):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, **kw)
        self.ready = self._expect("ready")  # the words after it

    @classmethod
    def python(cls, work, *args, **kw):
        """A Python workload; `work` sees the extra args in sys.argv[1:]."""
        return cls([sys.executable, "-c", PYTHON_GATE.format(work=work), *map(str, args)], **kw)

    @property
    def pid(self):
        return self.proc.pid

    def _expect(self, word, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"workload exited before {word!r} ({self.proc.wait()})")
            if line.startswith(word):
                return line.split()[1:]
        raise AssertionError(f"workload did not say {word!r} in {timeout}s")

    def run(self):
        """Let it work; returns the words after "done"."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._expect("done")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def read_proc_stat(pid):
    """Fields of /proc/PID/stat after the comm, as a list (index 0 is field 3, state)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def vmstat():
    with open("/proc/vmstat") as f:
        return {k: int(v) for k, v in (line.split() for line in f)}


def write_uncached(path, size):
    """Write a file of random bytes to disk and drop its pages from the page cache (its own
    pages only: nobody else's cache is touched), so reading it needs real I/O."""
    import os
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return path
