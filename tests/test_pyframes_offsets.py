"""The CPython struct offsets bpfsight walks frames with (pyframes.OFFSETS) against the
interpreters' own debug information: gdb reads each field's offset from the DWARF of every
CPython with symbols on this machine (the venv's own interpreter always; pyenv's other
versions where installed), so a wrong or mistyped entry fails here before it shows as
garbage frames."""
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from bpfsight import pyframes


def _libpython(prefix):
    found = sorted(glob.glob(os.path.join(prefix, "lib", "libpython3.*.so.1.0")))
    return found[0] if found else None


def _interpreters():
    """{(major, minor): libpython with DWARF}: the venv's interpreter, and pyenv's others."""
    out = {}
    prefixes = [sysconfig.get_config_var("prefix")]
    prefixes += glob.glob(os.path.expanduser("~/.pyenv/versions/3.*"))
    for prefix in prefixes:
        lib = _libpython(prefix)
        m = re.search(r"libpython(\d)\.(\d+)", lib or "")
        if m and (int(m[1]), int(m[2])) in pyframes.OFFSETS:
            out.setdefault((int(m[1]), int(m[2])), lib)
    return out


def _expressions(version):
    """{OFFSETS field: gdb expression of its offset} in this version's structs."""
    v310, v313 = version == (3, 10), version >= (3, 13)
    frame = "PyFrameObject" if v310 else "_PyInterpreterFrame"
    field = lambda t, f: f"(long)&(({t} *)0)->{f}"  # noqa: E731
    e = {
        "runtime_interpreters_head": field("_PyRuntimeState", "interpreters.head"),
        "interp_threads_head": field("PyInterpreterState",
                                     "tstate_head" if v310 else "threads.head"),
        "tstate_next": field("PyThreadState", "next"),
        "tstate_thread_id": field("PyThreadState", "thread_id" if v310 else "native_thread_id"),
        "frame_code": field(frame, "f_code" if version < (3, 13) else "f_executable"),
        "frame_previous": field(frame, "f_back" if v310 else "previous"),
        "frame_prev_instr": field(frame, "f_lasti" if v310 else
                                  "instr_ptr" if v313 else "prev_instr"),
        "gil": field("_PyRuntimeState" if version < (3, 12) else "PyInterpreterState",
                     "ceval.gil"),
        "gil_last_holder": field("struct _gil_runtime_state", "last_holder"),
        "gil_locked": field("struct _gil_runtime_state", "locked"),
        "gil_size": "sizeof(struct _gil_runtime_state)",
        "code_filename": field("PyCodeObject", "co_filename"),
        "code_name": field("PyCodeObject", "co_name"),
        "code_firstlineno": field("PyCodeObject", "co_firstlineno"),
        "code_linetable": field("PyCodeObject", "co_linetable"),
        "ascii_data": "sizeof(PyASCIIObject)",
        "compact_data": "sizeof(PyCompactUnicodeObject)",
        "bytes_size": field("PyVarObject", "ob_size"),
        "bytes_data": field("PyBytesObject", "ob_sval"),
    }
    if v310:
        e["cframe_current_frame"] = field("PyThreadState", "frame")
    elif v313:
        e["cframe_current_frame"] = field("PyThreadState", "current_frame")
    else:
        e["tstate_cframe"] = field("PyThreadState", "cframe")
        e["cframe_current_frame"] = field("_PyCFrame", "current_frame")
    if not v310:
        e["frame_owner"] = field(frame, "owner")
        e["code_adaptive"] = field("PyCodeObject", "co_code_adaptive")
        e["code_qualname"] = field("PyCodeObject", "co_qualname")
    return e


def _gdb_values(lib, expressions):
    args = ["gdb", "-batch", "-nx"]
    for expr in expressions:
        args += ["-ex", f"print {expr}"]
    out = subprocess.run(args + [lib], capture_output=True, text=True, timeout=120).stdout
    return [int(v) for v in re.findall(r"^\$\d+ = (\d+)$", out, re.M)]


INTERPRETERS = _interpreters()


def test_the_venv_interpreter_is_among_those_checked():
    version = sys.version_info[:2]
    assert version in INTERPRETERS, (version, INTERPRETERS)


@pytest.mark.parametrize("version", sorted(INTERPRETERS), ids=lambda v: "%d.%d" % v)
def test_offsets_match_the_interpreters_debug_information(version):
    assert shutil.which("gdb"), "gdb is needed (scripts/setup installs it)"
    expressions = _expressions(version)
    values = _gdb_values(INTERPRETERS[version], expressions.values())
    assert len(values) == len(expressions), "gdb could not evaluate every field"
    table = pyframes.OFFSETS[version]
    wrong = {name: (table[name], got) for name, got in zip(expressions, values)
             if table[name] != got}
    assert not wrong, wrong  # field: (table, DWARF)
    # what the version lacks is marked so, not left at a stale offset
    absent = {"tstate_cframe", "frame_owner"} - set(expressions)
    assert all(table[name] == pyframes.NONE for name in absent), table


def _sample_function(n):
    total = 0
    for i in range(n):
        if i % 3:
            total += i
        else:
            total -= 1
    return total


def test_line_table_decoding_matches_the_interpreters_own():
    """The running interpreter's line-table format decoded against its own reading of the
    same table (co_lines): every instruction's line."""
    code = _sample_function.__code__
    decode = pyframes.addr_to_line_3_10 if sys.version_info[:2] == (3, 10) else \
        pyframes.addr_to_line
    checked = 0
    for start, end, line in code.co_lines():
        for unit in range(start // 2, end // 2):
            assert decode(code.co_linetable, code.co_firstlineno, unit) == line, (unit, line)
            checked += 1
    assert checked > 10


def test_a_frame_whose_table_is_cut_short_gets_no_line_and_no_error():
    """What is read for a frame caught while its chain changed (or freed since) may end
    mid-entry: the frame is named without a line, never an exception (one ended a diagnose
    run once)."""
    code, table = _sample_function.__code__, _sample_function.__code__.co_linetable
    last = len(table) // 2  # an instruction the cut tables do not reach

    def raises(cut):
        try:
            pyframes.addr_to_line(table[:cut], code.co_firstlineno, last)
        except IndexError:
            return True
        return False
    cut = next((k for k in range(1, len(table)) if raises(k)), None)
    assert cut is not None, "no cut of the table ends mid-entry"
    reader = pyframes.CodeReader.__new__(pyframes.CodeReader)
    reader.off, reader._mem = pyframes.OFFSETS[(3, 11)], True
    reader._code = {1: ("f", "/x/app.py", code.co_firstlineno, table[:cut])}
    assert reader.frame(1, last) == "f (app.py:?)"
