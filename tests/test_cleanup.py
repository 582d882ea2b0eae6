"""Nothing of ours stays in the kernel after a tool exits: normally, on Ctrl-C, on SIGTERM.
Every shipped tool that loads BPF programs is covered (the registry is the list)."""
import os
import signal

import pytest

from bpfsight.tools import REGISTRY
from helpers import Running, assert_released, bpf_objects_of

pytestmark = pytest.mark.bpf

# tools that need arguments to start; None: loads no BPF program of its own
# (gpulat needs a CUDA library to attach to: test_gpulat builds one and checks release itself)
ARGS = {"doctor": None, "usdt": None, "flamediff": None, "heatmap": None, "progs": None,
        "bpflist": None, "tplist": None,
        "gpulat": None,
        "funclatency": ["c:getppid"], "diagnose": ["-d", "60"],
        "funccount": ["c:getppid"], "stackcount": ["t:sched:sched_switch"],
        "funcslower": ["c:usleep"],
        "trace": ["t:sched:sched_switch"], "argdist": ["-C", "p:c:getppid()"],
        "exporter": ["--listen", "127.0.0.1:0"], "profile": ["-F", "49"],
        "offcputime": [], "pktstat": ["-i", "lo"],
        # a ring buffer, a .bss global and a tp_btf program: every kind of object it holds
        "run": [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "examples", "execs.bpf.c")]}
TOOLS = [e.name for e in REGISTRY if ARGS.get(e.name, []) is not None]


@pytest.mark.parametrize("name", TOOLS)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_released_after_signal(name, sig):
    tool = Running(name, *ARGS.get(name, [])).wait_attached()
    held = bpf_objects_of(tool.proc.pid)
    assert held["prog"], held
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
