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


def test_every_tool_prints_its_help():
    """--help formats every tool's usage (argparse refuses, e.g., an empty exclusive group)
    and names each of its options."""
    from bpfsight.cli import build_parser
    for e in REGISTRY:
        _, parser = build_parser(e)
        text = parser.format_help()
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in text, (e.name, flag)


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


# Values that no argument of any tool should take, and a few that some should.
ODD_VALUES = ["", "abc", "0", "-1", "1,abc", "1.5", "99999999999999999999999", "/", "x" * 300,
              "/nonexistent/dir/out.html", "/proc/x.pb", "a=b", "0x10", " 1"]


def _typed_actions():
    from bpfsight.cli import build_parser
    for e in REGISTRY:
        _, parser = build_parser(e)
        for action in parser._actions:
            if callable(action.type) and action.type not in (int, float, str):
                yield e.name, parser, action


@pytest.mark.parametrize("value", ODD_VALUES)
def test_every_type_function_takes_or_refuses_cleanly(value):
    """Every `type=` function of every tool, on odd input: it returns a value or argparse
    turns what it raised into a usage error (one line, exit 2). Anything else escapes as a
    traceback: argparse converts only ArgumentTypeError, ValueError and TypeError, and the
    parser adds UsageError."""
    import argparse
    checked = 0
    for name, parser, action in _typed_actions():
        try:
            parser._get_value(action, value)
        except argparse.ArgumentError as exc:
            assert "\n" not in str(exc), (name, action.dest, str(exc))
        checked += 1
    assert checked >= 40  # the typed arguments across the tools


@pytest.mark.parametrize("args, needle", [
    (["diagnose", "-p", "1,abc", "-d", "30"], "invalid PID list"),
    (["diagnose", "--html", "/nonexistent/dir/x.html", "-d", "30"], "/nonexistent/dir/x.html"),
    (["profile", "--pprof", "/proc/x.pb", "30"], "/proc/x.pb"),
    (["offcputime", "--svg", "/", "30"], "is a directory"),
    (["profile", "--html", "/nonexistent/x.html", "30"], "cannot write"),
    (["heatmap", "-o", "/nonexistent/x.svg", "-"], "cannot write"),
    (["heatmap", "-o", "x.txt", "-"], "unknown output type"),
    (["flamediff", "-o", "/proc/x.svg", "a", "b"], "cannot write"),
    (["exporter", "--collectors", "nosuch"], "unknown collector"),
    (["syscount", "-e", "NOSUCH"], "errno"),
    (["usdt", "-p", "0"], "invalid PID"),
])
def test_bad_input_refused_before_any_work(args, needle):
    """Refused while the arguments are parsed: one line, exit 2, long before the 30 s the
    command asked for would end, and no file left behind."""
    res = run_bpfsight(*args, timeout=20)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Diagnosing" not in res.stdout + res.stderr


def test_output_file_checked_without_leaving_a_file(tmp_path):
    from bpfsight.outfile import output_file
    path = tmp_path / "report.html"
    assert output_file(".html")(str(path)) == str(path)
    assert not path.exists()  # tried, and removed again
    path.write_text("kept")
    output_file()(str(path))
    assert path.read_text() == "kept"  # an existing file is not truncated by the check


def test_a_write_that_fails_at_the_end_keeps_the_data(tmp_path):
    from bpfsight.errors import OutputError
    from bpfsight.outfile import write_outputs
    gone = tmp_path / "gone"
    gone.mkdir()
    target = gone / "report.html"
    ok = tmp_path / "ok.svg"
    gone.rmdir()  # the directory went away while the command measured
    with pytest.raises(OutputError) as err:
        write_outputs("diagnose", [(str(target), "<html>data</html>"), (str(ok), "<svg/>")])
    message = str(err.value)
    assert str(target) in message and "\n" not in message
    fallback = message.rsplit("saved to ", 1)[1].split(" ")[0]
    with open(fallback) as f:
        assert f.read() == "<html>data</html>"
    os.unlink(fallback)
    assert ok.read_text() == "<svg/>"  # the other file was still written
