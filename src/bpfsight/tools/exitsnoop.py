"""exitsnoop: trace process exits with exit code or signal, and age (BCC's exitsnoop)."""
import signal
import time

from ..tool import Tool, flag

HEADER = "%-16s %-7s %-7s %-7s %-7s %-s" % ("PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE")


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

    streams = target = True
    options = (flag("-t", "--timestamp", help="include timestamp on output"),
               flag("-x", "--failed", help="trace error exits only"),
               flag("-T", "--threaded", "--per-thread",
                    help="trace by thread (every thread's exit, not only processes)"))

    def banner_for(self, opts):
        return ("%-8s " % "TIME" if opts.timestamp else "") + HEADER

    def configure(self, spec, opts):
        spec.set_globals(targ_threads=opts.threaded, targ_failed=opts.failed,
                         wakeup_bytes=16 * 1024)

    def decode(self, batch, dtype, opts):
        return map(decode, batch)

    def render(self, records, opts, out):
        for e in records:
            clock = "%-8s " % time.strftime("%H:%M:%S") if opts.timestamp else ""
            out.text(clock + "%-16s %-7d %-7d %-7d %-7.2f %s" % (
                e["comm"], e["pid"], e["ppid"], e["tid"], e["age_s"], exit_text(e)))
