"""bpflist, BCC's name for progs listing once: the programs a running tool holds are listed."""
import json

import pytest

from helpers import Running, run_bpfsight

pytestmark = pytest.mark.bpf


def test_bpflist_lists_a_running_tools_programs():
    tool = Running("runqlat").wait_attached()
    try:
        res = run_bpfsight("bpflist", "--json")  # lists once and exits, as BCC's does
    finally:
        tool.stop()
    assert res.returncode == 0, res.stderr
    names = {json.loads(line)["name"] for line in res.stdout.splitlines() if "name" in line}
    assert any(n.startswith("runqlat") for n in names), names
