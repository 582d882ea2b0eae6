"""Where tool output goes: terminal text or NDJSON, one line per record, flushed so pipes and
tests see it at once."""
import signal
import sys
import time


class Output:
    def __init__(self, json_mode=False, stream=None):
        self.json = json_mode
        self.stream = stream or sys.stdout
        self._dumps = None

    def text(self, s="", end="\n"):
        if not self.json:
            _write_whole(self.stream, s + end)

    def banner(self, s):
        """'Tracing ... Hit Ctrl-C to end.': printed once attached (stderr in --json mode, so
        stdout stays pure NDJSON; tests wait for it to know the tool is attached)."""
        stream = sys.stderr if self.json else self.stream
        stream.write(s + "\n")
        stream.flush()

    def record(self, obj):
        """One JSON object per line (only in --json mode)."""
        if self.json:
            if self._dumps is None:  # json is imported only by --json runs (start-up cost)
                import json
                self._dumps = json.JSONEncoder(separators=(",", ":"), default=_default).encode
            _write_whole(self.stream, self._dumps(obj) + "\n")


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _write_whole(stream, text):
    """Write and flush with the stop signals held back: a stop signal that reached a write
    blocked on a full pipe (a reader that waits until the end, as the tests do) lost part of
    a record and joined two NDJSON lines into one (CPython's buffered writer, seen with
    sslsniff's 16 KiB records; 3 lines in 20 runs of a script that does only this). The
    signal is handled once the line is out, as it would have been at the next wait."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        stream.write(text)
        stream.flush()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _default(o):
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, bytes):
        return o.decode(errors="replace")
    raise TypeError(f"cannot serialise {type(o).__name__}")


def clock_hms():
    return time.strftime("%H:%M:%S")


CLEAR = "\033[H\033[2J"


def top_screen(out, noclear):
    """The head of a top-style screen (biotop, filetop, slabratetop): clear it (or, -C, a
    blank line), then the time and /proc/loadavg."""
    out.text("" if noclear else CLEAR, end="\n" if noclear else "")
    with open("/proc/loadavg") as f:
        out.text("%-8s loadavg: %s" % (clock_hms(), f.read()))
