import json
import os
import re

import pytest

from browser import body_attr, dump_dom, png_summary, screenshot
from helpers import Running, assert_released, bpf_objects_of, run_bpfsight, schedstat
from profile_workloads import SPIN, build
from workload import Gated

from bpfsight.profile.pprof import read_pprof
from bpfsight.profile.stacks import read_folded

pytestmark = pytest.mark.bpf

FREQ, SPIN_S = 199, 2.0


@pytest.fixture(scope="module")
def spin(tmp_path_factory):
    return build(SPIN, tmp_path_factory.mktemp("spin"), "spin")


@pytest.fixture(scope="module")
def profiled(spin, tmp_path_factory):
    """One profile of the spinner, -p PID, in every output at once. The spinner exits before
    the profiler stops, so its symbols must come from maps captured while it ran."""
    out_dir = tmp_path_factory.mktemp("out")
    files = {k: out_dir / f"p.{k}" for k in ("html", "svg", "pb.gz")}
    with Gated([spin, str(SPIN_S)]) as w:
        tool = Running("profile", "-F", FREQ, "-p", w.pid, "--json", "--html", files["html"],
                       "--svg", files["svg"], "--pprof", files["pb.gz"]).wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        before, steal0 = schedstat(w.pid), steal_ns()
        cpu_ns = int(w.run()[0])
        after, steal1 = schedstat(w.pid), steal_ns()
        pid = w.pid
    w.proc.wait(timeout=10)
    rc, out, err = tool.stop()
    assert rc == 0, err
    assert_released(held)
    recs = [json.loads(line) for line in out.splitlines()]
    stacks = [r for r in recs if "value" in r and r["pid"] == pid]
    errors = next(r["stack_errors"] for r in recs if "stack_errors" in r)
    return {"stacks": stacks, "errors": errors, "cpu_ns": cpu_ns, "files": files, "pid": pid,
            "slices": after[2] - before[2], "steal_ns": steal1 - steal0}


def steal_ns():
    """Time the hypervisor ran something else on this VM's vCPUs, all CPUs, /proc/stat."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) * 10**9 // os.sysconf("SC_CLK_TCK")


def test_hot_function_tops_the_profile_with_its_symbol(profiled):
    stacks = profiled["stacks"]
    total = sum(s["value"] for s in stacks)
    top = max(stacks, key=lambda s: s["value"])
    assert top["user_stack"][0] == "spin_here", top
    assert "main" in top["user_stack"]
    in_spin = sum(s["value"] for s in stacks if s["user_stack"][:1] == ["spin_here"])
    assert in_spin >= 0.8 * total, (in_spin, total)


def test_sample_count_matches_the_workloads_cpu_time(profiled):
    # cpu-clock is an hrtimer on each CPU with a fixed period (the kernel turns -F into
    # 1e9/FREQ ns): the spinner gets one sample per period it is on a CPU. Each of its
    # on-CPU slices (one per switch-in, from schedstat) gets floor or ceil of its length over
    # the period, depending on the timer's phase when it starts: an error in (-1, 1) per
    # slice, of mean 0 and variance <= 1/4, so the sum's standard deviation is at most
    # sqrt(slices)/2; 5 of those (a chance below 1e-6) + 3 samples for the CPU the spinner
    # uses outside its own measured interval. The timer runs on wall time, while the
    # process's CPU clock leaves out time the hypervisor stole from its vCPU: up to all the
    # steal /proc/stat saw in the window (+1 tick per CPU of rounding) may add samples.
    total = sum(s["value"] for s in profiled["stacks"])
    expected = profiled["cpu_ns"] / 1e9 * FREQ
    noise = 5 * profiled["slices"] ** 0.5 / 2 + 3
    steal_s = profiled["steal_ns"] / 1e9 + os.cpu_count() / os.sysconf("SC_CLK_TCK")
    assert expected - noise <= total <= expected + steal_s * FREQ + noise, \
        (total, expected, profiled["slices"], steal_s)
    assert profiled["errors"]["counts_full"] == 0


def test_pprof_parses_with_the_schema(profiled):
    prof = read_pprof(profiled["files"]["pb.gz"])
    strings = list(prof.string_table)
    assert strings[0] == ""
    assert [(strings[t.type], strings[t.unit]) for t in prof.sample_type] == [
        ("samples", "count"), ("cpu", "nanoseconds")]
    assert prof.period == int(1e9 / FREQ)
    funcs = {f.id: strings[f.name] for f in prof.function}
    locs = {loc.id: funcs[loc.line[0].function_id] for loc in prof.location}
    total = sum(s.value[0] for s in prof.sample)
    assert total == sum(s["value"] for s in profiled["stacks"])
    leafs = {}
    for s in prof.sample:
        leafs[locs[s.location_id[0]]] = leafs.get(locs[s.location_id[0]], 0) + s.value[0]
    assert max(leafs, key=leafs.get) == "spin_here"
    assert all(s.value[1] == s.value[0] * prof.period for s in prof.sample)


def test_svg_has_the_hot_frame(profiled):
    svg = profiled["files"]["svg"].read_text()
    assert svg.startswith("<?xml") and svg.rstrip().endswith("</svg>")
    m = re.search(r"<title>spin_here \((\d+) samples", svg)
    assert m and int(m.group(1)) >= 0.8 * sum(s["value"] for s in profiled["stacks"])


def test_html_renders_frames_in_chromium(profiled, tmp_path):
    html = profiled["files"]["html"]
    text = html.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text
    dom = dump_dom(html)
    frames = body_attr(dom, "data-frames")
    assert frames >= 4 and dom.count('class="frame') == frames
    assert re.search(r'class="frame[^"]*"[^>]*>spin_here<', dom)
    dom = dump_dom(html, "search=^spin_here$")
    assert body_attr(dom, "data-matched") >= 1 and "Matched: " in dom
    width, height, distinct = png_summary(screenshot(html, tmp_path / "shot.png"))
    assert (width, height) == (1200, 800) and distinct > 50


def test_folded_output_round_trips(spin):
    with Gated([spin, "1"]) as w:
        tool = Running("profile", "-F", FREQ, "-p", w.pid, "-f").wait_attached()
        w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    folded = read_folded(out.splitlines())
    assert folded and all(frames[0] == "spin" for frames in folded)
    hot = [f for f in folded if f[-1] == "spin_here"]
    assert sum(folded[f] for f in hot) >= 0.8 * sum(folded.values())
    again = "".join(f"{';'.join(f)} {v}\n" for f, v in sorted(folded.items()))
    assert read_folded(again.splitlines()) == folded
    assert sorted(out.splitlines()) == sorted(again.splitlines())


def test_kernel_stacks_and_delimiter(spin):
    # -K: kernel frames only; a sample in user mode then has no frames below the comm
    with Gated([spin, "1"]) as w:
        tool = Running("profile", "-F", FREQ, "-K", "-p", w.pid, "--json").wait_attached()
        w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    stacks = [json.loads(line) for line in out.splitlines() if '"value"' in line]
    assert stacks and all(s["user_stack"] == [] for s in stacks)


@pytest.fixture
def cgroup():
    from bpfsight.target import cgroup2_root
    path = os.path.join(cgroup2_root(), f"bpfsight-profile-test-{os.getpid()}")
    os.mkdir(path)
    yield path
    os.rmdir(path)


def test_cgroup_filter_keeps_only_its_members(spin, cgroup):
    with Gated([spin, "1"]) as inside, Gated([spin, "1"]) as outside:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(inside.pid))
        tool = Running("profile", "-F", FREQ, "-c", cgroup, "--json").wait_attached()
        inside.proc.stdin.write("go\n")
        inside.proc.stdin.flush()
        outside.run()
        inside._expect("done")
        rc, out, err = tool.stop()
        with open(os.path.join(cgroup, "cgroup.procs")) as f:
            assert f.read().split() == [str(inside.pid)]
        with open(os.path.join(os.path.dirname(cgroup), "cgroup.procs"), "w") as f:
            f.write(str(inside.pid))  # back to the root, so the cgroup can go
    assert rc == 0, err
    pids = {json.loads(ln)["pid"] for ln in out.splitlines() if '"value"' in ln}
    assert pids == {inside.pid}


@pytest.mark.parametrize("args", [["-F", "0"], ["-F", "x"], ["-F", "100000000"], ["-C", "4096"],
                                  ["-p", "999999999"], ["-L", "999999999"], ["0"]])
def test_bad_arguments_exit_2_with_one_line(args):
    res = run_bpfsight("profile", *args)
    assert res.returncode == 2, res
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
