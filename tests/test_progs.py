import json

import pytest

from helpers import Running, bpf_objects_of, run_bpfsight

pytestmark = pytest.mark.bpf


def test_lists_a_running_tools_programs_with_growing_run_counts():
    tool = Running("runqlat").wait_attached()
    try:
        held = bpf_objects_of(tool.proc.pid)["prog"]  # independent: the tool's own fds
        res = run_bpfsight("progs", "-i", "1", "-n", "2", "--json")
    finally:
        rc, _, err = tool.stop()
    assert rc == 0, err
    assert res.returncode == 0, res.stderr
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    by_interval = {n: {r["id"]: r for r in recs if r["interval"] == n} for n in (1, 2)}
    assert held and held <= set(by_interval[1]) and held <= set(by_interval[2])
    ours = [by_interval[2][i] for i in held]
    assert all(r["name"].startswith("runqlat_") and r["type"] == "tracing" for r in ours)
    first = next(r for r in by_interval[1].values() if r["id"] in held
                 and r["name"] in ("runqlat_delay", "runqlat_switch"))
    second = by_interval[2][first["id"]]
    # every context switch runs it: counts grow, and the interval's runs are the growth
    assert first["runs"] > 0 and second["runs"] > 0
    assert second["run_cnt"] == first["run_cnt"] + second["runs"]
    assert second["avg_ns"] > 0 and second["cpu_pct"] > 0
    assert second["attach"] in (["tp_btf sched_switch"], ["raw_tp sched_switch"])


def test_text_layout():
    res = run_bpfsight("progs", "-n", "1", "-r", "3")
    assert res.returncode == 0, res.stderr
    banner, _, *lines = res.stdout.strip().splitlines()
    assert banner.startswith("Sampling ") and "Ctrl-C" in banner
    assert lines[0].split() == ["ID", "TYPE", "NAME", "RUNS/s", "AVG", "ns", "CPU%", "TOTAL",
                                "RUNS", "ATTACH"]
    assert len(lines) <= 4


@pytest.mark.parametrize("argv", [["-i", "0"], ["-n", "x"], ["-r", "-1"], ["extra"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("progs", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
