"""execsnoop: trace new processes via execve/execveat, with full argv (BCC's execsnoop)."""
import re
import time

from ..errors import UsageError
from ..target import resolve_pid, uid_arg
from ..tool import DURATION, TIME_COLUMN, Option, Tool, flag, positive_int

ARGSIZE, TOTAL_MAX_ARGS = 128, 60  # bpf/include/execsnoop.h


def head_dtype(record):
    """The fields of struct exec_event before args[] (record: its dtype from the object's BTF):
    each record is sent cut short after its args_size bytes of arguments."""
    import numpy as np
    names = [n for n in record.names if n != "args"]
    return np.dtype({"names": names, "formats": [record.fields[n][0] for n in names],
                     "offsets": [record.fields[n][1] for n in names],
                     "itemsize": record.fields["args"][1]})


def decode(raw, head):
    import numpy as np
    e = np.frombuffer(raw, dtype=head, count=1)[0]
    blob = raw[head.itemsize:head.itemsize + int(e["args_size"])]
    argv = [a.decode(errors="replace") for a in blob.split(b"\0")[:-1]] if blob else []
    return {"ts_ns": int(e["ts_ns"]), "pid": int(e["pid"]), "ppid": int(e["ppid"]),
            "uid": int(e["uid"]), "ret": int(e["retval"]),
            "comm": e["comm"].decode(errors="replace"), "argv": argv,
            "truncated": int(e["args_count"]) > len(argv)}


class Execsnoop(Tool):
    name = "execsnoop"
    summary = "trace new processes (execve/execveat) with argv"

    streams = True
    fixed_size = False  # argv follows the fixed head
    options = (
        TIME_COLUMN,
        flag("-t", "--timestamp", help="include timestamp on output"),
        flag("-x", "--fails", help="include failed exec()s"),
        flag("-q", "--quote", help='add "quotemarks" around arguments'),
        Option("-n", "--name", help="only print commands matching this name (regex), any arg"),
        Option("-l", "--line", help="only print commands where arg contains this line (regex)"),
        flag("-U", "--print-uid", help="print UID column"),
        Option("-u", "--uid", type=uid_arg, help="trace this UID only"),
        Option("-p", "-P", "--ppid", type=positive_int("PPID"), help="trace this parent PID only"),
        Option("-c", "--cgroup", metavar="PATH", help="trace this cgroup v2 only"),
        Option("--max-args", type=positive_int("max-args"), default=20,
               help="maximum number of arguments parsed and displayed, defaults to 20"),
        DURATION)

    def banner_for(self, opts):
        header = ""
        if opts.time:
            header += "%-8s " % "TIME"
        if opts.timestamp:
            header += "%-8s " % "TIME(s)"
        if opts.print_uid:
            header += "%-6s " % "UID"
        return header + "%-16s %-6s %-6s %3s %s" % ("PCOMM", "PID", "PPID", "RET", "ARGS")

    def configure(self, spec, opts):
        if opts.max_args > TOTAL_MAX_ARGS:
            raise UsageError(f"--max-args must be at most {TOTAL_MAX_ARGS}")
        self._name_re = re.compile(opts.name) if opts.name else None
        self._line_re = re.compile(opts.line) if opts.line else None
        spec.set_global("max_args", opts.max_args)
        if opts.uid is not None:
            spec.set_global("targ_uid", opts.uid)
        if opts.ppid:
            spec.set_global("targ_ppid", resolve_pid(opts.ppid))
        spec.set_global("wakeup_bytes", 1)  # exec events are rare: wake the reader for each
        self._start = time.monotonic_ns()

    def decode(self, batch, dtype, opts):
        """Each exec shown (-x, -n, -l filter here), with time_s since the start."""
        head = head_dtype(dtype)
        for raw in batch:
            e = decode(raw, head)
            if e["ret"] != 0 and not opts.fails:
                continue
            if self._name_re and not self._name_re.search(e["comm"]):
                continue
            if self._line_re and not self._line_re.search(" ".join(e["argv"])):
                continue
            yield {**e, "time_s": round((time.monotonic_ns() - self._start) / 1e9, 3)}

    def render(self, records, opts, out):
        for e in records:
            argv = [f'"{a}"' for a in e["argv"]] if opts.quote else list(e["argv"])
            if e["truncated"]:
                argv.append("...")
            row = ""
            if opts.time:
                row += "%-8s " % time.strftime("%H:%M:%S")
            if opts.timestamp:
                row += "%-8.3f " % e["time_s"]
            if opts.print_uid:
                row += "%-6d " % e["uid"]
            out.text(row + "%-16s %-6d %-6d %3d %s" % (e["comm"], e["pid"], e["ppid"], e["ret"],
                                                       " ".join(argv)))
