"""capable: security capability checks, one line each (BCC's capable)."""
import time

from ..report.grouped import comm_of
from ..tool import DURATION, Tool, flag

# include/uapi/linux/capability.h, in order
CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
        "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")


class Capable(Tool):
    name = "capable"
    summary = "trace security capability checks"
    description = ("Trace capability checks (BCC's capable) from the capability:cap_capable "
                   "tracepoint (Linux 6.13 and later; BCC uses a kprobe). The tracepoint does "
                   "not say whether a check is audited, so every check is shown, as BCC's -v "
                   "does. VERDICT is granted or denied (-EPERM).")
    streams = target = True
    options = (flag("-x", "--denied", help="only show denied checks"),
               flag("--unique", help="show each process's capability once"),
               DURATION)

    def banner_for(self, opts):
        return "%-9s %-6s %-7s %-7s %-16s %-4s %-20s %s" % (
            "TIME", "UID", "PID", "TID", "COMM", "CAP", "NAME", "VERDICT")

    def configure(self, spec, opts):
        self._seen = set()

    def decode(self, batch, dtype, opts):
        for r in batch:
            pid, cap, ret = int(r["pid"]), int(r["cap"]), int(r["ret"])
            if (opts.denied and ret == 0) or (opts.unique and (pid, cap) in self._seen):
                continue
            self._seen.add((pid, cap))
            yield {"ts_ns": int(r["ts_ns"]), "uid": int(r["uid"]), "pid": pid,
                   "tid": int(r["tid"]), "comm": comm_of(r["comm"]), "cap": cap,
                   "name": CAPS[cap] if 0 <= cap < len(CAPS) else str(cap),
                   "verdict": "granted" if ret == 0 else "denied", "ret": ret}

    def render(self, records, opts, out):
        for e in records:
            out.text("%-9s %-6d %-7d %-7d %-16s %-4d %-20s %s" % (
                time.strftime("%H:%M:%S"), e["uid"], e["pid"], e["tid"], e["comm"], e["cap"],
                e["name"], e["verdict"]))
