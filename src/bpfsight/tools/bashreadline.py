"""bashreadline: the command lines interactive bash shells read (BCC's bashreadline)."""
import time

from ..binaries import function_offsets, resolve_binary
from ..errors import UsageError
from ..report.grouped import comm_of
from ..tool import Option, Tool

HEADER = "%-9s %-7s %s"


class Bashreadline(Tool):
    name = "bashreadline"
    summary = "print the command lines interactive bash shells read"
    description = ("Print the lines interactive bash shells read with readline() (BCC's "
                   "bashreadline): a uretprobe on the bash binary's readline, whose return "
                   "value is the line. A bash built against a shared libreadline: -s names "
                   "that library instead.")
    streams = target = True
    options = (Option("-s", "--shared", metavar="PATH",
                      help="the binary or library that holds readline (default: bash)"),)

    def configure(self, spec, opts):
        self._binary = resolve_binary(opts.shared or "bash")
        if "readline" not in function_offsets(self._binary, ["readline"]):
            raise UsageError(f"{self._binary} has no readline function: give the library "
                             "that has it with -s (e.g. -s /lib/x86_64-linux-gnu/libreadline.so.8)")
        spec.set_global("wakeup_bytes", 1)  # a line at a time, as it is typed

    def attach(self, obj, opts):
        obj.attach_uprobe("bashreadline_return", self._binary, "readline", pid=opts.pid or -1,
                          retprobe=True)

    def banner_for(self, opts):
        return HEADER % ("TIME", "PID", "COMMAND")

    def decode(self, batch, dtype, opts):
        for r in batch:
            yield {"ts_ns": int(r["ts_ns"]), "pid": int(r["pid"]), "uid": int(r["uid"]),
                   "comm": comm_of(r["comm"]), "line": comm_of(r["line"])}

    def render(self, records, opts, out):
        for e in records:
            out.text(HEADER % (time.strftime("%H:%M:%S"), e["pid"], e["line"]))
