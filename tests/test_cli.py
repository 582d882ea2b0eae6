"""Command-line behaviour: help, bad input is one line and exit 2, the registry is complete."""
import importlib
import os
import subprocess

import pytest

from bpfsight.tools import REGISTRY
from helpers import run_bpfsight

TESTS = os.path.dirname(__file__)


def test_help_lists_every_tool_with_a_purpose():
    res = run_bpfsight("--help")
    assert res.returncode == 0
    for e in REGISTRY:
        assert e.name in res.stdout and e.summary in res.stdout


@pytest.mark.parametrize("args, needle", [
    (["nosuchtool"], "unknown command"),
    (["runqlat", "0"], "invalid interval"),
    (["runqlat", "abc"], "invalid interval"),
    (["runqlat", "1", "-5"], "invalid count"),
    (["biolatency", "--bogus"], "unrecognized arguments"),
    (["runqlat", "-p", "notapid"], "invalid PID"),
])
def test_bad_arguments_one_line_exit_2(args, needle):
    res = run_bpfsight(*args)
    assert res.returncode == 2
    assert needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.bpf
def test_unknown_pid_is_one_line_exit_2():
    res = run_bpfsight("runqlat", "-p", "4194303", "1", "1")
    assert res.returncode == 2
    assert res.stderr.strip() == "bpfsight runqlat: no process with PID 4194303"


@pytest.mark.bpf
def test_not_root_is_one_line_exit_2():
    # root without capabilities: what a non-root user has (and readable paths stay readable)
    res = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-all"] +
                         __import__("helpers").BPFSIGHT + ["runqlat", "1", "1"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    assert "root" in res.stderr and "sudo" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_every_registered_tool_has_a_module_and_a_test():
    """A shipped tool without a test is a defect (psutil's meta-test)."""
    for e in REGISTRY:
        module = importlib.import_module(e.module)
        assert hasattr(module, e.cls), f"{e.module} has no class {e.cls}"
        assert os.path.exists(os.path.join(TESTS, f"test_{e.name}.py")), f"no test for {e.name}"
