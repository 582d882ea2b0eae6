"""--stats: the self-report counts the tool's own program runs (cross-checked against the
kernel's context-switch counter) and switches BPF run-time stats off again at exit.

BPF_ENABLE_STATS does not change the sysctl (it reports only what was written to it); stats
are on while some process holds a "bpf-stats" fd. So "on while running" is that fd in the
tool, and "off after exit" is the sysctl unchanged plus a program we load ourselves not being
timed (checked when no other process on this shared machine holds such an fd)."""
import glob
import json
import os
import signal
import time

import pytest

from helpers import CpuHogs, Running, run_bpfsight

pytestmark = pytest.mark.bpf

SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def sysctl():
    with open(SYSCTL) as f:
        return int(f.read())


def context_switches():
    with open("/proc/stat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("ctxt "))


def stats_fd_holders():
    holders = set()
    for link in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if os.readlink(link) == "anon_inode:bpf-stats":
                holders.add(int(link.split("/")[2]))
        except OSError:
            pass
    return holders


def assert_stats_off():
    """A program we load is not timed while it runs (unless someone else turned stats on)."""
    from bpfsight.bpf import ObjectSpec
    from bpfsight.bpf.info import prog_info
    spec = ObjectSpec.open("selftest")
    spec.set_globals(targ_tgid=os.getpid())
    with spec.load() as obj:
        obj.attach_all()
        for _ in range(100):
            os.getppid()
        runs = prog_info(obj.programs["selftest_produce"].fd).run_cnt
    if runs and stats_fd_holders():
        pytest.skip(f"another process holds BPF stats on: {stats_fd_holders()}")
    if sysctl():  # the machine's own setting, which bpfsight must leave as it found it
        assert runs > 0
        return
    assert runs == 0


def stats_of(stderr):
    lines = [json.loads(ln) for ln in stderr.splitlines() if ln.startswith('{"tool"')]
    assert lines, stderr
    return lines[-1]["stats"]


def test_runqlat_stats_count_switches_and_restore_sysctl():
    before = sysctl()
    with CpuHogs(3):
        outer0 = context_switches()  # before the tool exists: it cannot count more than
        tool = Running("runqlat", "--stats", "--json").wait_attached()
        try:
            stats_on = tool.proc.pid in stats_fd_holders()
            ctxt0 = context_switches()
            time.sleep(2)
            ctxt1 = context_switches()
        finally:
            rc, out, err = tool.stop(signal.SIGINT)
        outer1 = context_switches()  # ... the switches until it exited
    assert stats_on, "stats should be on while the tool runs"
    assert rc == 0, err
    assert sysctl() == before
    assert_stats_off()
    stats = stats_of(err)
    runs = {p["program"]: p for p in stats["programs"]}
    switch = next(runs[n] for n in ("runqlat_delay", "runqlat_switch",
                                      "runqlat_switch_raw") if n in runs)
    assert all(p["runs"] > 0 and p["avg_ns"] > 0 for p in (switch,))
    # Every context switch (/proc/stat ctxt: the scheduler's count of prev != next switches)
    # runs the sched_switch program exactly once, at the same point of __schedule. Stats were
    # on and the program attached from before ctxt0 (checked above) to after ctxt1, and the
    # tool existed only between outer0 and outer1: exact bounds on any machine.
    assert ctxt1 - ctxt0 > 0  # the hogs (3 on <= 3 CPUs with this test) are switched
    assert ctxt1 - ctxt0 <= switch["runs"] <= outer1 - outer0, \
        (switch["runs"], ctxt1 - ctxt0, outer1 - outer0)
    # the share of one CPU its programs took, from the figures in the same report (seconds
    # and run time are rounded to ms and ns: 1% covers that); programs cannot run longer
    # than all CPUs for the whole time
    run_ns = sum(p["run_time_ns"] for p in stats["programs"])
    pct = 100 * run_ns / (stats["seconds"] * 1e9)
    assert 0 < stats["bpf_cpu_pct"] <= 100 * os.cpu_count()
    assert abs(stats["bpf_cpu_pct"] - pct) <= 0.01 * pct + 0.001, (stats, pct)
    assert stats["process"]["max_rss_kb"] > 0


def test_text_report_goes_to_stderr_only():
    before = sysctl()
    rc, out, err = Running("runqlat", "--stats", "1", "1").finish(timeout=30)
    assert rc == 0, err
    assert "--stats" not in out
    assert any(n in err for n in ("runqlat_delay", "runqlat_switch"))
    assert "AVG ns" in err and "BPF CPU" in err
    assert sysctl() == before


def test_stats_per_interval_with_timestamp():
    rc, out, err = Running("runqlat", "--stats", "-T", "1", "2").finish(timeout=30)
    assert rc == 0, err
    assert err.count("(this interval") == 2 and err.count("(at exit") == 1, err


def test_stats_with_bad_argument_is_one_line_exit_2():
    before = sysctl()
    res = run_bpfsight("runqlat", "--stats", "-p", "4194303", "1", "1")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert sysctl() == before


def test_map_full_events_are_counted():
    """runqlat per thread with room for one histogram: every other thread's sample is lost,
    and the collector says how many (at least one per hog that ran after the first)."""
    from bpfsight.bpf import ObjectSpec, info
    from bpfsight.tool import select_hooks
    collector = info.observe(info.Collector())
    try:
        spec = ObjectSpec.open("runqlat")
        spec.set_globals(targ_per_thread=True)
        select_hooks(spec, "runqlat")
        spec.maps["hists"].max_entries = 1
        with CpuHogs(3), spec.load() as obj:
            obj.attach_all()
            time.sleep(1)
            live = collector.map_full()["runqlat"]
            kept = len(obj.map("hists").raw_keys())
        final = collector.map_full()["runqlat"]
    finally:
        info.unobserve(collector)
    assert kept == 1
    assert live > 3 and final >= live
