"""killsnoop: signals sent with kill/tkill/tgkill, sender, target and result (BCC's
killsnoop)."""
import signal
import time

from ..errors import UsageError
from ..fileio import drop_absent_syscalls
from ..report.grouped import comm_of
from ..tool import DURATION, Option, Tool, flag

HEADER = "%-9s %-7s %-16s %-4s %-7s %s" % ("TIME", "PID", "COMM", "SIG", "TPID", "RESULT")


def signal_arg(text):
    """-s: a number (9) or a name (KILL, SIGKILL)."""
    if text.isdigit():
        return int(text)
    name = text.upper() if text.upper().startswith("SIG") else "SIG" + text.upper()
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise UsageError(f"invalid signal {text!r}: a number or a name such as TERM") from None


def signal_name(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


class Killsnoop(Tool):
    name = "killsnoop"
    summary = "trace signals sent with kill(), tkill() and tgkill()"
    description = ("Trace signals sent by kill(2), tkill(2) and tgkill(2) (BCC's killsnoop): "
                   "sender, signal, target and result. TPID is kill()'s pid argument (0 or "
                   "negative: a process group) or tkill/tgkill's thread. Signals the kernel "
                   "sends itself (SIGSEGV, SIGPIPE, a parent's SIGCHLD) are not syscalls and are "
                   "not shown.")
    banner = HEADER
    streams = target = True
    options = (flag("-x", "--failed", help="only show failed kill syscalls"),
               Option("-s", "--signal", type=signal_arg,
                      help="trace this signal only (number or name)"),
               DURATION)

    def configure(self, spec, opts):
        spec.set_globals(targ_failed=opts.failed, targ_sig=opts.signal or 0, wakeup_bytes=1)
        drop_absent_syscalls(spec)

    def decode(self, batch, dtype, opts):
        for r in batch:
            yield {"ts_ns": int(r["ts_ns"]), "pid": int(r["pid"]), "comm": comm_of(r["comm"]),
                   "call": comm_of(r["call"]), "sig": int(r["sig"]),
                   "signal": signal_name(int(r["sig"])), "tpid": int(r["tpid"]),
                   "ret": int(r["ret"])}

    def render(self, records, opts, out):
        for e in records:
            out.text("%-9s %-7d %-16s %-4d %-7d %d" % (time.strftime("%H:%M:%S"), e["pid"],
                                                      e["comm"], e["sig"], e["tpid"], e["ret"]))
