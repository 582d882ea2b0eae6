"""Symbolization (bpfsight.profile.symbols) against real processes: PIE and shared-library
offsets, separate debug files, exited processes, JIT perf maps, the kernel; and the folded
format's parsing. No BPF needed."""
import os
import shutil
import subprocess

import pytest

from profile_workloads import build_addrs
from workload import Gated

from bpfsight.profile.stacks import parse_folded_line, read_folded
from bpfsight.profile.symbols import UNKNOWN, Symbolizer, kernel_symbols


@pytest.fixture(scope="module")
def addrs_bin(tmp_path_factory):
    return build_addrs(tmp_path_factory.mktemp("addrs"))


def run_addrs(binary):
    """Start the workload; (Gated, exe_func address, lib_func address)."""
    w = Gated([binary])
    exe, lib, _ = w.run()
    return w, int(exe, 16), int(lib, 16)


def test_pie_executable_and_shared_library(addrs_bin):
    w, exe, lib = run_addrs(addrs_bin)
    with w:
        names = Symbolizer().user(w.pid, [exe, exe + 3, lib, lib + 1])
    assert names == ["exe_func", "exe_func", "lib_func", "lib_func"]
    assert exe > 0x10000 and lib > exe  # really relocated: PIE and a library mapped elsewhere


def test_exited_process_resolves_from_the_maps_captured_while_alive(addrs_bin):
    w, exe, lib = run_addrs(addrs_bin)
    sym = Symbolizer()
    with w:
        sym.capture(w.pid)
    w.proc.wait(timeout=10)
    assert not os.path.exists(f"/proc/{w.pid}/maps")
    assert sym.user(w.pid, [exe, lib]) == ["exe_func", "lib_func"]
    assert Symbolizer().user(w.pid, [exe]) == [UNKNOWN]  # nothing captured: nothing known


def _split_debug(binary, out_dir):
    """Strip binary (no .symtab left) and keep its symbols in a separate debug file."""
    stripped = out_dir / "stripped"
    debug = out_dir / "addrs.debug"
    subprocess.run(["objcopy", "--only-keep-debug", binary, str(debug)], check=True)
    shutil.copy(binary, stripped)
    subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
    subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", str(stripped)], check=True,
                   cwd=out_dir)
    out = subprocess.run(["readelf", "-n", str(stripped)], capture_output=True, text=True).stdout
    build_id = out.split("Build ID:")[1].split()[0]
    return str(stripped), debug, build_id


def test_separate_debug_file_by_build_id_and_by_debuglink(addrs_bin, tmp_path):
    stripped, debug, build_id = _split_debug(addrs_bin, tmp_path)
    by_id = tmp_path / "debugroot" / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    by_id.parent.mkdir(parents=True)
    shutil.copy(debug, by_id)
    w, exe, _ = run_addrs(stripped)
    with w:
        empty = tmp_path / "nothing"
        # the debuglink's file sits next to the binary: move it away to see the build-id path
        os.rename(debug, tmp_path / "elsewhere.debug")
        assert Symbolizer(debug_dirs=[str(empty)]).user(w.pid, [exe]) == [UNKNOWN]
        assert Symbolizer(debug_dirs=[str(tmp_path / "debugroot")]).user(w.pid, [exe]) == [
            "exe_func"]
        os.rename(tmp_path / "elsewhere.debug", debug)
        assert Symbolizer(debug_dirs=[str(empty)]).user(w.pid, [exe]) == ["exe_func"]


def test_jit_perf_map(addrs_bin, tmp_path):
    w, exe, _ = run_addrs(addrs_bin)
    with w:
        # a JIT writes START SIZE NAME for code in anonymous memory; this range is unmapped,
        # exactly like JIT code is not file-backed
        (tmp_path / f"perf-{w.pid}.map").write_text(
            "7f0000001000 40 py::hot_loop:/app/x.py\n7f0000002000 10 LazyCompile:*f app.js:1\n")
        sym = Symbolizer(perf_map_dir=str(tmp_path))
        names = sym.user(w.pid, [0x7F0000001000, 0x7F000000103F, 0x7F0000001040,
                                 0x7F0000002008, exe])
    assert names == ["py::hot_loop:/app/x.py", "py::hot_loop:/app/x.py", UNKNOWN,
                     "LazyCompile:*f app.js:1", "exe_func"]


def test_kernel_symbols_from_kallsyms():
    want = {}
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, kind, name = line.split()[:3]
            if name in ("schedule", "do_nanosleep", "vfs_read") and kind in "tT":
                want[name] = int(addr, 16)
    assert len(want) == 3 and all(want.values()), "kallsyms hides addresses (kptr_restrict?)"
    names = Symbolizer().kernel([a + 1 for a in want.values()])
    assert names == list(want)
    assert kernel_symbols() is kernel_symbols()  # read once per run


def test_many_unique_frames_resolve_consistently():
    """100k distinct kernel addresses inside known functions all resolve to them."""
    table = kernel_symbols()
    idx = list(range(0, len(table), max(1, len(table) // 100000)))[:100000]
    starts, ends = table.addrs[idx], table.addrs[[min(i + 1, len(table) - 1) for i in idx]]
    import numpy as np
    probe = np.where(ends > starts, starts + (ends - starts) // 2, starts)
    names = Symbolizer().kernel(probe.tolist())
    expected = table.lookup(starts.tolist())
    assert sum(a == b for a, b in zip(names, expected)) >= 0.999 * len(idx)


def test_folded_parsing():
    assert parse_folded_line("a;b c;d 12\n") == (("a", "b c", "d"), 12)
    assert parse_folded_line("# comment") is None and parse_folded_line("  ") is None
    assert read_folded(["x;y 1", "x;y 2", "x 1.5"]) == {("x", "y"): 3, ("x",): 1.5}
    with pytest.raises(ValueError):
        read_folded(["x;y"])
