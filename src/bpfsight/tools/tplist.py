"""tplist: the kernel's tracepoints (from tracefs), or with -l/-p a binary's USDT probes (BCC's
tplist)."""
import fnmatch
import os

from ..bpf.features import TRACEFS
from ..errors import UsageError
from ..tracefs import mount_tracefs
from ..tool import output_for
from .usdt import Usdt


def tracepoints(pattern="*"):
    """['category:event', ...] that tracefs lists, sorted; pattern is a glob on either form
    (BCC's 'category:event' or tracefs' 'category/event')."""
    events = os.path.join(TRACEFS, "events")
    found = []
    for category in sorted(os.listdir(events)):
        where = os.path.join(events, category)
        if not os.path.isdir(where):
            continue
        for event in sorted(os.listdir(where)):
            name = f"{category}:{event}"
            if os.path.isfile(os.path.join(where, event, "format")) and (
                    fnmatch.fnmatch(name, pattern) or
                    fnmatch.fnmatch(f"{category}/{event}", pattern)):
                found.append(name)
    return found


def fields(tracepoint):
    """The tracepoint's own fields from its format file, e.g. ['int prev_pid', ...] (the
    common_* header fields left out)."""
    category, event = tracepoint.split(":", 1)
    out = []
    with open(os.path.join(TRACEFS, "events", category, event, "format")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("field:") and "common_" not in line:
                out.append(line.split(";")[0][len("field:"):].strip())
    return out


class Tplist(Usdt):
    name = "tplist"
    summary = "list tracepoints (and with -l a binary's USDT probes), with their fields"
    description = ("List the kernel's tracepoints as CATEGORY:EVENT (BCC's tplist), from "
                   "tracefs; FILTER is a glob such as 'sched:*' or '*:*exec*'. --fields adds each "
                   "one's fields. With -l LIB or -p PID: the USDT probes of that binary or "
                   "process, as `bpfsight usdt` lists them.")

    def add_arguments(self, p):
        p.add_argument("--fields", action="store_true",
                       help="also print each tracepoint's fields (BCC's -v; -v here is "
                            "libbpf's log)")
        super().add_arguments(p)

    def run(self, args):
        if args.lib or args.pid:
            return super().run(args)
        if not mount_tracefs():
            raise UsageError(f"tracefs is not mounted at {TRACEFS} and could not be")
        out = output_for(args)
        for tp in tracepoints(args.filter):
            rec = {"tracepoint": tp}
            if args.fields:
                rec["fields"] = fields(tp)
            out.record({"tool": self.name, **rec})
            out.text(tp)
            for field in rec.get("fields", []):
                out.text(f"    {field};")
        return 0
