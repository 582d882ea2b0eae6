"""filelife: files created and deleted while tracing, with their age (BCC's filelife)."""
import time

from ..fileio import drop_absent_syscalls
from ..report.grouped import comm_of
from ..tool import DURATION, Tool


class Filelife(Tool):
    name = "filelife"
    summary = "trace short-lived files: created and deleted while tracing, with their age"
    description = (
        "Trace files created and then deleted while tracing, with their age at deletion\n"
        "(BCC's filelife). Without kprobes on vfs_create/vfs_unlink, a creation is an\n"
        "open/openat/openat2/creat that created the file (the kernel's FMODE_CREATED: an\n"
        "O_CREAT open of an existing file does not count) and a deletion an unlink/unlinkat\n"
        "that succeeded; the two are matched by name: the directory the path is relative to\n"
        "(the caller's cwd or dirfd; none for an absolute path) and the path as passed. A file\n"
        "deleted under another name than it was created with (an absolute path for a relative\n"
        "one, a rename in between), mknod'ed or created through io_uring is not seen. FILE is\n"
        "the path as the deleting process passed it.")
    streams = target = True
    options = (DURATION,)

    def banner_for(self, opts):
        return "%-8s %-7s %-16s %-7s %s" % ("TIME", "PID", "COMM", "AGE(s)", "FILE")

    def configure(self, spec, opts):
        drop_absent_syscalls(spec)
        spec.set_global("wakeup_bytes", 1)  # deletions are rare: show each as it happens

    def decode(self, batch, dtype, opts):
        for e in batch:
            yield {"ts_ns": int(e["ts_ns"]), "pid": int(e["pid"]), "comm": comm_of(e["comm"]),
                   "creator": int(e["creator"]), "age_s": int(e["age_ns"]) / 1e9,
                   "age_ns": int(e["age_ns"]), "dev": int(e["dev"]), "ino": int(e["ino"]),
                   "file": comm_of(e["path"])}

    def render(self, records, opts, out):
        for e in records:
            out.text("%-8s %-7d %-16s %-7.2f %s" % (time.strftime("%H:%M:%S"), e["pid"],
                                                    e["comm"], e["age_s"], e["file"]))
