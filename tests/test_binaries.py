"""Finding libraries as BCC does: the ld.so cache read directly matches `ldconfig -p`."""
import shutil
import subprocess

import pytest

from bpfsight import binaries


@pytest.mark.skipif(not shutil.which("ldconfig"), reason="no ldconfig")
def test_ld_cache_reads_what_ldconfig_prints():
    entries = binaries._ld_cache()
    assert entries is not None, "this glibc's cache format is the one we read"
    printed = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    expected = [(name.split()[0], path) for name, sep, path in
                (ln.strip().partition(" => ") for ln in printed.splitlines()) if sep]
    assert entries == expected and len(entries) > 10


def test_library_names_resolve_to_this_machines_files():
    libc = binaries.resolve_binary("c")
    assert libc.startswith("/") and "libc.so" in libc
    assert binaries.resolve_binary("libc.so.6") == libc
    with pytest.raises(binaries.UsageError):
        binaries.resolve_binary("no-such-library-anywhere")


def test_damaged_ld_cache_falls_back_to_ldconfig(tmp_path, monkeypatch):
    with open(binaries.LD_CACHE, "rb") as f:
        head = f.read(2000)  # the header promises more entries than this holds
    cut = tmp_path / "ld.so.cache"
    cut.write_bytes(head)
    monkeypatch.setattr(binaries, "LD_CACHE", str(cut))
    assert binaries._ld_cache() is None
    assert "libc.so" in binaries.resolve_binary("c")  # found through `ldconfig -p`
