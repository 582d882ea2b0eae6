"""exitsnoop: trace process exits with exit code or signal, and age (BCC's exitsnoop)."""
import signal
import time

from ..tool import (Tool, add_output_args, add_target_args, open_spec, output_for, select_hooks,
                   snoop)

HEADER = "%-16s %-7s %-7s %-7s %-7s %-s" % ("PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE")


def event_dtype():
    """struct exit_event (bpf/exitsnoop.bpf.c)."""
    import numpy as np
    return np.dtype([("start_ns", "<u8"), ("exit_ns", "<u8"), ("pid", "<u4"), ("tid", "<u4"),
                     ("ppid", "<u4"), ("exit_code", "<i4"), ("comm", "S16")])


def decode(e):
    """wait(2) status -> exit code, or the fatal signal and whether it dumped core."""
    status = int(e["exit_code"])
    sig = status & 0x7F
    return {"pid": int(e["pid"]), "ppid": int(e["ppid"]), "tid": int(e["tid"]),
            "comm": e["comm"].decode(errors="replace"),
            "age_s": (int(e["exit_ns"]) - int(e["start_ns"])) / 1e9,
            "exit_code": 0 if sig else (status >> 8) & 0xFF, "signal": sig,
            "core_dumped": bool(status & 0x80)}


def exit_text(e):
    if not e["signal"]:
        return "code %d" % e["exit_code"] if e["exit_code"] else "0"
    try:
        name = signal.strsignal(e["signal"]) or "unknown"
    except ValueError:
        name = "unknown"
    return "signal %d (%s)%s" % (e["signal"], name, ", core dumped" if e["core_dumped"] else "")


class Exitsnoop(Tool):
    name = "exitsnoop"
    summary = "trace process exits with exit code, signal and age"

    def add_arguments(self, p):
        p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
        p.add_argument("-x", "--failed", action="store_true", help="trace error exits only")
        add_target_args(p)
        p.add_argument("-T", "--threaded", "--per-thread", action="store_true",
                       help="trace by thread (every thread's exit, not only processes)")
        add_output_args(p)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("exitsnoop", args, self.name)
        spec.set_globals(targ_threads=args.threaded, targ_failed=args.failed,
                         wakeup_bytes=16 * 1024)
        select_hooks(spec, self.name)

        def show(ring):
            for e in map(decode, ring.read_array(event_dtype())):
                out.record({"tool": self.name, **e})
                clock = "%-8s " % time.strftime("%H:%M:%S") if args.timestamp else ""
                out.text(clock + "%-16s %-7d %-7d %-7d %-7.2f %s" % (
                    e["comm"], e["pid"], e["ppid"], e["tid"], e["age_s"], exit_text(e)))

        return snoop(spec, out, ("%-8s " % "TIME" if args.timestamp else "") + HEADER, show)
