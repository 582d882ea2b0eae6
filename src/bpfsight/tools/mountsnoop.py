"""mountsnoop: mount() and umount() calls with arguments and result (BCC's mountsnoop)."""
from ..fileio import drop_absent_syscalls
from ..report.grouped import comm_of
from ..tool import DURATION, Tool

CALLS = ("mount", "umount")  # mountsnoop.bpf.c CALL_*
MS_FLAGS = [(1, "MS_RDONLY"), (2, "MS_NOSUID"), (4, "MS_NODEV"), (8, "MS_NOEXEC"),
            (16, "MS_SYNCHRONOUS"), (32, "MS_REMOUNT"), (64, "MS_MANDLOCK"),
            (128, "MS_DIRSYNC"), (1024, "MS_NOATIME"), (2048, "MS_NODIRATIME"),
            (4096, "MS_BIND"), (8192, "MS_MOVE"), (16384, "MS_REC"), (32768, "MS_SILENT"),
            (1 << 18, "MS_PRIVATE"), (1 << 19, "MS_SLAVE"), (1 << 20, "MS_SHARED"),
            (1 << 21, "MS_RELATIME"), (1 << 25, "MS_LAZYTIME")]
UMOUNT_FLAGS = [(1, "MNT_FORCE"), (2, "MNT_DETACH"), (4, "MNT_EXPIRE"), (8, "UMOUNT_NOFOLLOW")]


def flag_text(flags, names):
    words = [n for bit, n in names if flags & bit]
    rest = flags & ~sum(bit for bit, _ in names)
    return "|".join(words + ([hex(rest)] if rest else [])) or "0"


class Mountsnoop(Tool):
    name = "mountsnoop"
    summary = "trace mount() and umount() calls"
    description = ("Trace mount(2) and umount2(2) (BCC's mountsnoop): the call as the process "
                   "made it, with its result. Mounts made through the new mount API (fsopen, "
                   "fsconfig, fsmount, move_mount: util-linux may use it) are not traced.")
    streams = target = True
    options = (DURATION,)

    def banner_for(self, opts):
        return "%-16s %-7s %-7s %s" % ("COMM", "PID", "TID", "CALL")

    def configure(self, spec, opts):
        spec.set_global("wakeup_bytes", 1)  # rare: show each at once
        drop_absent_syscalls(spec)

    def decode(self, batch, dtype, opts):
        for r in batch:
            call = CALLS[int(r["call"])] if int(r["call"]) < len(CALLS) else str(int(r["call"]))
            flags = int(r["flags"])
            yield {"ts_ns": int(r["ts_ns"]), "pid": int(r["pid"]), "tid": int(r["tid"]),
                   "comm": comm_of(r["comm"]), "call": call, "source": comm_of(r["source"]),
                   "target": comm_of(r["target"]), "fstype": comm_of(r["fstype"]),
                   "flags": flag_text(flags, MS_FLAGS if call == "mount" else UMOUNT_FLAGS),
                   "data": comm_of(r["data"]), "ret": int(r["ret"])}

    def render(self, records, opts, out):
        for e in records:
            if e["call"] == "mount":
                text = 'mount("%s", "%s", "%s", %s, "%s")' % (
                    e["source"], e["target"], e["fstype"], e["flags"], e["data"])
            else:
                text = 'umount("%s", %s)' % (e["target"], e["flags"])
            out.text("%-16s %-7d %-7d %s = %d" % (e["comm"], e["pid"], e["tid"], text, e["ret"]))
