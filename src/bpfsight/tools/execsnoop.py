"""execsnoop: trace new processes via execve/execveat, with full argv (BCC's execsnoop)."""
import pwd
import re
import struct
import time

from ..tool import Tool, add_output_args, open_spec, output_for, positive_int, select_hooks, snoop

# struct exec_event (bpf/include/execsnoop.h) up to args[]
_HEADER = struct.Struct("<QIIIiiI16s")
ARGSIZE, TOTAL_MAX_ARGS = 128, 60


def decode(raw):
    ts, pid, ppid, uid, ret, argc, args_size, comm = _HEADER.unpack_from(raw)
    blob = raw[_HEADER.size:_HEADER.size + args_size]
    argv = [a.decode(errors="replace") for a in blob.split(b"\0")[:-1]] if blob else []
    return {"ts_ns": ts, "pid": pid, "ppid": ppid, "uid": uid, "ret": ret,
            "comm": comm.rstrip(b"\0").decode(errors="replace"), "argv": argv,
            "truncated": argc > len(argv)}


def _user_id(text):
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise ValueError(f"unknown user {text!r}")


class Execsnoop(Tool):
    name = "execsnoop"
    summary = "trace new processes (execve/execveat) with argv"

    def add_arguments(self, p):
        p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
        p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
        p.add_argument("-q", "--quote", action="store_true",
                       help='add "quotemarks" around arguments')
        p.add_argument("-n", "--name", help="only print commands matching this name (regex), any arg")
        p.add_argument("-l", "--line", help="only print commands where arg contains this line (regex)")
        p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
        p.add_argument("-u", "--uid", type=_user_id, help="trace this UID only")
        p.add_argument("-p", "-P", "--ppid", type=positive_int("PPID"), help="trace this parent PID only")
        p.add_argument("-c", "--cgroup", metavar="PATH", help="trace this cgroup v2 only")
        p.add_argument("--max-args", type=positive_int("max-args"), default=20,
                       help="maximum number of arguments parsed and displayed, defaults to 20")
        p.add_argument("-d", "--duration", type=positive_int("duration"),
                       help="stop after this many seconds")
        add_output_args(p)

    def run(self, args):
        if args.max_args > TOTAL_MAX_ARGS:
            from ..errors import UsageError
            raise UsageError(f"--max-args must be at most {TOTAL_MAX_ARGS}")
        out = output_for(args)
        name_re = re.compile(args.name) if args.name else None
        line_re = re.compile(args.line) if args.line else None
        spec = open_spec("execsnoop", args, self.name)
        spec.set_global("max_args", args.max_args)
        if args.uid is not None:
            spec.set_global("targ_uid", args.uid)
        if args.ppid:
            from ..target import resolve_pid
            spec.set_global("targ_ppid", resolve_pid(args.ppid))
        spec.set_global("wakeup_bytes", 1)  # exec events are rare: wake the reader for each
        select_hooks(spec, self.name)
        start = time.monotonic_ns()
        header = ""
        if args.time:
            header += "%-8s " % "TIME"
        if args.timestamp:
            header += "%-8s " % "TIME(s)"
        if args.print_uid:
            header += "%-6s " % "UID"
        header += "%-16s %-6s %-6s %3s %s" % ("PCOMM", "PID", "PPID", "RET", "ARGS")

        def show(e):
            if e["ret"] != 0 and not args.fails:
                return
            if name_re and not name_re.search(e["comm"]):
                return
            if line_re and not line_re.search(" ".join(e["argv"])):
                return
            out.record({"tool": self.name, **e})
            argv = [f'"{a}"' for a in e["argv"]] if args.quote else list(e["argv"])
            if e["truncated"]:
                argv.append("...")
            row = ""
            if args.time:
                row += "%-8s " % time.strftime("%H:%M:%S")
            if args.timestamp:
                row += "%-8.3f " % ((time.monotonic_ns() - start) / 1e9)
            if args.print_uid:
                row += "%-6d " % e["uid"]
            out.text(row + "%-16s %-6d %-6d %3d %s" % (e["comm"], e["pid"], e["ppid"], e["ret"],
                                                       " ".join(argv)))

        return snoop(spec, out, header, lambda r: [show(decode(raw)) for raw in r.read()],
                     duration=args.duration)
