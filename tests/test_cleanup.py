"""Nothing of ours stays in the kernel after a tool exits: normally, on Ctrl-C, on SIGTERM."""
import signal

import pytest

from helpers import Running, assert_released, bpf_objects_of

pytestmark = pytest.mark.bpf

TOOLS = [["runqlat"], ["biolatency"], ["execsnoop"]]


@pytest.mark.parametrize("args", TOOLS, ids=lambda a: a[0])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_released_after_signal(args, sig):
    tool = Running(*args).wait_attached()
    held = bpf_objects_of(tool.proc.pid)
    assert held["prog"] and held["link"], held
    rc, _, err = tool.stop(sig)
    assert rc == 0, err
    assert "Traceback" not in err
    assert_released(held)


def test_released_after_normal_exit():
    tool = Running("runqlat", "1", "2").wait_attached()
    held = bpf_objects_of(tool.proc.pid)
    rc, _, _ = tool.finish()
    assert rc == 0
    assert_released(held)
