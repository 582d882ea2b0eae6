"""Types from the source of truth: map and record dtypes built from an object's BTF, the check
of a hand-written dtype against them, and an ObjectSpec that needs no privileges until load.
The BTF tests open shipped objects and load nothing."""
import os
import subprocess
import sys

import numpy as np
import pytest

from bpfsight.bpf.btf import BTF, check_layout
from bpfsight.bpf.object import ObjectSpec, _iterate
from bpfsight.bpf._libbpf import lib
from bpfsight.bpf.maps import Map


def opened_maps(name):
    """{map name: Map typed by the opened (not loaded) object's BTF}."""
    spec = ObjectSpec.open(name)
    btf = BTF(lib().bpf_object__btf(spec._ptr))
    maps = {m.name: m for m in (Map.from_libbpf(p, btf)
                                for p in _iterate(lib().bpf_object__next_map, spec._ptr))}
    return spec, btf, maps


def test_struct_values_keep_the_compilers_offsets_and_names():
    """struct disk_stat (biostat.h) has a bpf_spin_lock, arrays and padding: every field where
    the compiler put it, the value as large as the C struct."""
    spec, btf, maps = opened_maps("biostat")
    dt = maps["stats"].value_dtype()
    assert dt.itemsize == maps["stats"].value_size
    assert dt.fields["inflight"][1] == 4 and dt.fields["last_ns"][1] == 8
    assert dt["ios"].shape == (4,) and dt["ios"].base == np.dtype("<u8")
    spec.close()


def test_char_arrays_are_text_and_nested_structs_nest():
    spec, btf, maps = opened_maps("runqlat")
    dt = maps["hists"].value_dtype()  # struct comm_hist { struct hist h; char comm[16]; }
    assert dt["comm"] == np.dtype("S16")
    assert dt["h"]["slots"].shape == (32,) and dt["h"].fields["total"][1] == 256
    spec.close()


def test_a_hand_written_layout_is_checked_field_by_field():
    spec, btf, maps = opened_maps("runqlat")
    derived = maps["hists"].value_dtype()
    hist = np.dtype([("slots", "<u8", (32,)), ("total", "<u8")])
    # the same layout, with a name for padding: accepted
    assert check_layout(np.dtype([("h", hist), ("comm", "S16")]), derived, "x")
    # two fields swapped: the first misplaced one is named
    swapped = np.dtype({"names": ["comm", "h"], "formats": ["S16", hist],
                        "offsets": [0, 16], "itemsize": derived.itemsize})
    with pytest.raises(ValueError, match="field 'comm' declared at offset 0.*offset 264"):
        check_layout(swapped, derived, "x")
    with pytest.raises(ValueError, match="field 'name' is not in the BTF type"):
        check_layout(np.dtype([("h", hist), ("name", "S16")]), derived, "x")
    with pytest.raises(ValueError, match="288 bytes declared, the BTF says 280"):
        check_layout(np.dtype([("h", hist), ("comm", "S16"), ("x", "<u8")]), derived, "x")
    spec.close()


def test_ring_records_are_the_type_event_record_names():
    """EVENT_RECORD(struct open_event) puts the type in the BTF; a map declared by sizes
    (the ring) has none."""
    spec, btf, maps = opened_maps("opensnoop")
    record = btf.variable_dtype("events_record")
    assert {"ts_ns", "pid", "comm", "path"} <= set(record.names)
    assert maps["events"].key_dtype() is None and maps["events"].value_dtype() is None
    spec.close()


def test_a_spec_opens_edits_and_plans_without_privileges():
    """The binding checks privileges at load, not at open: an unprivileged process opens an
    object, sets its globals and reads its programs, and load() refuses with the fix."""
    if os.geteuid() != 0:
        pytest.skip("drops root's capabilities: needs root")
    code = """
from bpfsight.bpf import ObjectSpec, PermissionDenied
spec = ObjectSpec.open("runqlat")
spec.set_global("targ_ms", True)
assert spec.has_global("targ_tgid") and "runqlat_delay" in spec.programs
try:
    spec.load()
except PermissionDenied as exc:
    print("refused:", exc)
"""
    # root without any capability (none kept across exec, none regained by uid 0)
    drop = ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all",
            "--securebits", "+noroot,+noroot_locked", "--"]
    res = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert "refused: loading BPF programs needs root" in res.stdout, res.stdout
