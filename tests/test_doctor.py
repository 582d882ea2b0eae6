"""doctor must tell the truth about this kernel."""
import json
import os

import pytest

from helpers import run_bpfsight

pytestmark = pytest.mark.bpf

FEATURES = ["btf", "jit", "tracepoint", "tp_btf", "raw_tp", "kprobe", "fentry", "uprobe",
            "perf_cpu_clock", "hw_pmu", "ringbuf", "map_batch", "bpf_stats", "lockdown",
            "tracefs"]


def test_json_reports_every_feature_and_every_tool_runs():
    res = run_bpfsight("doctor", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert sorted(report["features"]) == sorted(FEATURES)
    f = {k: v["available"] for k, v in report["features"].items()}
    # independent facts about this machine
    assert f["btf"] == os.path.exists("/sys/kernel/btf/vmlinux")
    assert f["kprobe"] == os.path.exists("/sys/bus/event_source/devices/kprobe")
    assert f["uprobe"] == os.path.exists("/sys/bus/event_source/devices/uprobe")
    with open("/proc/sys/net/core/bpf_jit_enable") as jit:
        assert f["jit"] == (jit.read().strip() != "0")
    assert f["tp_btf"] and f["raw_tp"] and f["tracepoint"] and f["ringbuf"]
    not_runnable = {n: t["reason"] for n, t in report["tools"].items() if not t["runnable"]}
    assert not not_runnable


def test_table_output():
    res = run_bpfsight("doctor")
    assert res.returncode == 0
    assert res.stdout.startswith("FEATURE")
    assert "tools can run on this kernel" in res.stdout
