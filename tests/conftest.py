import os

import pytest

from blockdev import loop_device  # noqa: F401  (a fixture for the block I/O tests)

IN_CI_AS_ROOT = os.environ.get("CI") == "true" and os.geteuid() == 0


def pytest_configure(config):
    config.addinivalue_line("markers", "bpf: loads real BPF programs (needs root)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI as root nothing may skip: a skipped BPF test would hide a broken tool."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI_AS_ROOT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI as root, which counts as a failure: {report.longrepr}"


@pytest.fixture(autouse=True)
def _no_tool_left_running():
    yield
    from helpers import Running
    Running.stop_leftovers()


@pytest.fixture(autouse=True)
def _needs_root(request):
    if request.node.get_closest_marker("bpf") and os.geteuid() != 0:
        pytest.skip("loads BPF programs: needs root")
