"""mountsnoop against the workload's own mount(2)/umount2(2) calls (libc's, not the new mount
API), in a mount namespace of its own so nothing outside sees the mount."""
import pytest

from toolrun import trace_gated

pytestmark = pytest.mark.bpf

WORK = """
import ctypes, os, tempfile
libc = ctypes.CDLL("libc.so.6", use_errno=True)
assert libc.unshare(0x00020000) == 0  # CLONE_NEWNS: a mount namespace of its own
libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None)  # MS_REC|MS_PRIVATE: no propagation
where = tempfile.mkdtemp()
ok = libc.mount(b"bpfsight-test", where.encode(), b"tmpfs", 2 | 4, b"size=1m")  # NOSUID|NODEV
bad = libc.mount(b"none", b"/nonexistent-dir", b"tmpfs", 0, None)
gone = libc.umount2(where.encode(), 2)  # MNT_DETACH
os.rmdir(where)
result = f"{where} {ok} {bad} {gone}"
"""


def test_each_mount_and_umount_of_the_workload():
    recs, (where, ok, bad, gone), pid = trace_gated("mountsnoop", work=WORK)
    assert (int(ok), int(bad), int(gone)) == (0, -1, 0)
    mine = [(r["call"], r["source"], r["target"], r["fstype"], r["flags"], r["data"], r["ret"])
            for r in recs if r["pid"] == pid]
    assert ("mount", "bpfsight-test", where, "tmpfs", "MS_NOSUID|MS_NODEV", "size=1m", 0) \
        in mine, mine
    assert ("mount", "none", "/nonexistent-dir", "tmpfs", "0", "", -2) in mine, mine
    assert ("umount", "", where, "", "MNT_DETACH", "", 0) in mine, mine
    assert [m[0] for m in mine] == ["mount", "mount", "mount", "umount"], mine
