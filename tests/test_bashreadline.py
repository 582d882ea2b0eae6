"""bashreadline against an interactive bash on a pseudo-terminal that the test types into:
each command line typed comes back once, in order, with the shell's pid."""
import os
import pty
import select
import time

import pytest

from helpers import Running, assert_released, bpf_objects_of
from toolrun import assert_usage_error, records

pytestmark = pytest.mark.bpf

LINES = ["echo first-line", "true 2", "echo 'with spaces  and   quotes'"]


def read_until(fd, text, timeout=30):
    seen, deadline = b"", time.monotonic() + timeout
    while text.encode() not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_lines_typed_into_an_interactive_bash():
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], {"PS1": "ready> ",
                                                                     "TERM": "dumb"})
    try:
        read_until(fd, "ready> ")
        tool = Running("bashreadline", "-p", pid, "--json").wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        # bash was already inside readline() when the uretprobe came: that call's return
        # cannot be seen (the probe sets itself up at a function's entry), as in BCC
        for line in [": warm-up"] + LINES:
            os.write(fd, line.encode() + b"\n")
            read_until(fd, "ready> ")
        time.sleep(0.3)
        rc, out, err = tool.stop()
        assert rc == 0, err
        assert_released(held)
    finally:
        os.write(fd, b"exit\n")
        os.waitpid(pid, 0)
        os.close(fd)
    got = [(r["pid"], r["line"]) for r in records(out) if r["line"] != ": warm-up"]
    assert got == [(pid, line) for line in LINES], got


def test_a_binary_without_readline():
    assert "no readline" in assert_usage_error("bashreadline", "-s", "/bin/true")
