"""`bpfsight run` and the Python API for users' own programs: the three examples/ programs,
each checked against the workload's own counts, and the bad programs a user will write."""
import json
import os
import subprocess
import sys

import pytest

from helpers import Running, assert_released, bpf_objects_of
from toolrun import assert_usage_error, records
from workload import Gated

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
pytestmark = pytest.mark.bpf


def example(name):
    return os.path.join(EXAMPLES, name)


def test_readsize_histogram_counts_every_read_of_the_workload():
    """A tracepoint histogram (examples/readsize.bpf.c): N reads of 4096 bytes land in the
    4096-8191 slot, and the exact total is N x 4096 plus the gate's own stdin reads (a few
    bytes: "go\\n")."""
    n = 700
    work = ("f = open('/dev/zero', 'rb', buffering=0)\n"
            f"for _ in range({n}): f.read(4096)\n"
            "result = 0")
    with Gated.python(work) as w:
        tool = Running("run", example("readsize.bpf.c"), "--set", f"targ_tgid={w.pid}",
                       "--json").wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert_released(held)
    (reading,) = [r for r in records(out) if r.get("map") == "read_bytes"]
    (row,) = reading["rows"]
    assert row["key"]["tgid"] == w.pid
    hist = row["hist"]
    slot_4096 = next(b["count"] for b in hist["buckets"] if b["low"] == 4096)
    assert slot_4096 == n, hist
    assert 0 <= hist["total"] - n * 4096 < 64, hist  # the gate's "go\n"


def test_getpid_uprobe_counts_the_calls_the_workload_made():
    """A uprobe counter (examples/getpidcount.bpf.c) through the Python API: between two
    snapshots the workload's row grows by exactly the os.getpid() calls it made."""
    from bpfsight import Program
    n = 2500
    work = f"import os\nfor _ in range({n}): os.getpid()\nresult = {n}"

    def calls(program, pid):
        (reading,) = [r for r in program.snapshot() if r["map"] == "getpid_calls"]
        return next((r["value"]["count"] for r in reading["rows"] if r["key"] == pid), 0)

    with Gated.python(work) as w, Program(example("getpidcount.bpf.c")) as program:
        before = calls(program, w.pid)
        (made,) = w.run()
        after = calls(program, w.pid)
    assert after - before == int(made) == n


def test_execs_ring_buffer_has_one_record_per_exec():
    """A ring-buffer snoop (examples/execs.bpf.c), records decoded by the struct the program
    names: one record per /bin/true the workload ran, with the workload as parent."""
    n = 25
    work = ("import subprocess\n"
            f"for _ in range({n}): subprocess.run(['/bin/true'], check=True)\n"
            f"result = {n}")
    with Gated.python(work) as w:
        tool = Running("run", example("execs.bpf.c"), "--json").wait_attached()
        w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    execs = [r for r in records(out) if r.get("ring") == "events" and r["ppid"] == w.pid]
    assert len(execs) == n, execs[:3]
    assert {r["comm"] for r in execs} == {"true"}
    (lost,) = [r for r in records(out) if r.get("kind") == "globals"]
    assert lost["values"] == {"lost": 0}


def test_text_output_prints_tables_and_histograms(tmp_path):
    """Text mode: a histogram in BCC's layout under its key, a table with a header row."""
    source = tmp_path / "two.bpf.c"
    source.write_text(TWO_MAPS)
    res = subprocess.run([sys.executable, "-m", "bpfsight", "run", str(source), "1", "1"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "@by_cpu" in res.stdout and "count" in res.stdout
    assert "@lat_hist" in res.stdout and "distribution" in res.stdout


TWO_MAPS = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "maps.bpf.h"
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
         __type(key, __u32); __type(value, __u64); } by_cpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, __u32); __type(value, struct hist); } lat_hist SEC(".maps");
SEC("tp_btf/sched_switch")
int on_switch(void *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id(), zero = 0;
	__u64 one = 1, *n = bpf_map_lookup_elem(&by_cpu, &cpu);
	struct hist *h = bpf_map_lookup_elem(&lat_hist, &zero);
	if (n) __sync_fetch_and_add(n, 1); else bpf_map_update_elem(&by_cpu, &cpu, &one, 0);
	if (h) hist_add(h, bpf_ktime_get_ns() & 0xffff);
	return 0;
}
"""


@pytest.mark.parametrize("source, words", [
    ("int broken(void) { return }", "does not compile"),
    ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar L[] SEC("license") = "GPL";\n'
     'SEC("kprobe/do_nanosleep") int k(void *ctx) { return 0; }', "kprobe"),
    ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar L[] SEC("license") = "GPL";\n'
     'SEC("uprobe") int u(void *ctx) { return 0; }', "name the binary and function"),
    ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar L[] SEC("license") = "GPL";\n'
     'SEC("tp_btf/sched_switch") int v(void *ctx) '
     '{ return *(volatile int *)(long)bpf_get_prandom_u32(); }',
     "verifier"),
    ('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar L[] SEC("license") = "GPL";\n'
     'SEC("tracepoint/nosuch/event") int t(void *ctx) { return 0; }', "nosuch"),
])
def test_bad_programs_get_one_line_and_exit_2(tmp_path, source, words):
    path = tmp_path / "bad.bpf.c"
    path.write_text(source)
    err = assert_usage_error("run", str(path), "1", "1")
    assert words in err, err


@pytest.mark.parametrize("args, words", [
    (["/nonexistent.bpf.c"], "no such file"),
    ([__file__], "expected a .bpf.c source"),
    ([os.path.join(EXAMPLES, "execs.bpf.c"), "--set", "novalue"], "NAME=VALUE"),
    ([os.path.join(EXAMPLES, "execs.bpf.c"), "--set", "nosuch=1"], "nosuch"),
])
def test_bad_arguments_get_one_line_and_exit_2(args, words):
    err = assert_usage_error("run", *args, "1", "1")
    assert words in err, err


def test_json_records_are_plain_data():
    """--json: every line parses; each map's reading carries its kind; the per-CPU counter of
    maps.bpf.h's failed inserts is summed over CPUs into one row (none failed)."""
    res = subprocess.run([sys.executable, "-m", "bpfsight", "run", example("readsize.bpf.c"),
                          "--json", "1", "1"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    kinds = {r["map"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert kinds["read_bytes"]["kind"] == "hist"
    assert kinds["map_full"]["kind"] == "table"
    assert kinds["map_full"]["rows"] == [{"key": 0, "value": 0}]


def test_exporter_serves_the_maps_the_program_fills():
    """--exporter: the same maps, scraped over HTTP as Prometheus text; between two scrapes the
    workload's getpid() series grows by exactly the calls it made."""
    import re
    import urllib.request
    from prometheus_client.parser import text_string_to_metric_families
    n = 1500
    work = f"import os\nfor _ in range({n}): os.getpid()\nresult = {n}"

    def calls(url, pid):
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == "bpfsight_run_getpid_calls_count" and s.labels["key"] == str(pid):
                    return s.value
        return 0

    with Gated.python(work) as w:
        tool = Running("run", example("getpidcount.bpf.c"), "--exporter",
                       "127.0.0.1:0").wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        url = re.search(rb"Serving (http://\S+/metrics)", tool.stdout + tool.stderr)
        assert url, tool.stderr
        url = url.group(1).decode()
        before = calls(url, w.pid)
        (made,) = w.run()
        after = calls(url, w.pid)
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert_released(held)
    assert after - before == int(made) == n, (before, after)


def test_histogram_maps_become_prometheus_histograms():
    """A histogram reading as a Prometheus histogram: slot i is the bucket le 2^(i+1), counts
    cumulative, the exact total as the sum; the key's fields are labels."""
    from bpfsight.exporter.program import families_of
    from bpfsight.report.histogram import Log2Histogram
    reading = {"map": "read_bytes", "kind": "hist", "keys": 1,
               "rows": [{"key": {"tgid": 7, "comm": "cat"},
                         "hist": Log2Histogram([1, 2, 0, 3], total=40, unit="value")}]}
    (fam,) = families_of(reading)
    assert fam.name == "bpfsight_run_read_bytes" and fam.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in fam.samples if s.name.endswith("_bucket")}
    assert buckets == {"2.0": 1, "4.0": 3, "8.0": 3, "16.0": 6, "+Inf": 6}
    total = next(s for s in fam.samples if s.name.endswith("_sum"))
    assert total.value == 40 and total.labels == {"tgid": "7", "comm": "cat"}
