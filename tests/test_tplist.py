"""tplist against tracefs itself, and -l against `usdt`: the same probes."""
import glob
import json

import pytest

from helpers import run_bpfsight

pytestmark = pytest.mark.bpf


def test_every_tracepoint_tracefs_has():
    res = run_bpfsight("tplist", "--json")
    assert res.returncode == 0, res.stderr
    listed = [json.loads(line)["tracepoint"] for line in res.stdout.splitlines()]
    on_disk = sorted(p.split("/")[-3] + ":" + p.split("/")[-2]
                     for p in glob.glob("/sys/kernel/tracing/events/*/*/format"))
    assert sorted(listed) == on_disk and len(listed) > 100


def test_filter_and_fields():
    res = run_bpfsight("tplist", "sched:sched_switch", "--fields", "--json")
    (rec,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert rec["tracepoint"] == "sched:sched_switch"
    assert "pid_t prev_pid" in rec["fields"] and "pid_t next_pid" in rec["fields"]
    assert not any("common_" in f for f in rec["fields"])


def test_usdt_probes_as_usdt_lists_them():
    # Debian's python3.11 carries USDT probes (function__entry, gc__start, ...)
    a = run_bpfsight("tplist", "-l", "/usr/bin/python3.11", "--json")
    b = run_bpfsight("usdt", "-l", "/usr/bin/python3.11", "--json")
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    strip = lambda out: [{k: v for k, v in json.loads(x).items() if k != "tool"}  # noqa: E731
                         for x in out.splitlines()]
    assert strip(a.stdout) == strip(b.stdout) and len(strip(a.stdout)) >= 5
