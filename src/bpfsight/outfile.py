"""Files a command writes (--html, --svg, --pprof, -o FILE): checked when the arguments are
parsed, before anything is loaded or attached, and written at the end so that a write that
still fails (the disk filled up, the directory went away) does not lose what was measured."""
import os
import sys

from .errors import OutputError, UsageError


def output_file(*suffixes):
    """argparse type for an output path: it must be creatable or writable now (tried for real:
    root passes every permission check, yet cannot create a file in /proc), and end in one of
    suffixes when any are given. A file that did not exist is removed again after the try."""
    def parse(text):
        if suffixes and os.path.splitext(text)[1].lower() not in suffixes:
            raise UsageError(f"unknown output type {text!r}: use {', '.join(suffixes)}")
        if os.path.isdir(text):
            raise UsageError(f"cannot write {text!r}: it is a directory")
        existed = os.path.lexists(text)
        try:
            # O_NONBLOCK: a FIFO without a reader fails at once instead of hanging here
            os.close(os.open(text, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o644))
        except OSError as exc:
            raise UsageError(f"cannot write {text!r}: {exc.strerror}") from None
        if not existed:
            os.unlink(text)
        return text
    parse.__name__ = "output file"
    return parse


def write_outputs(tool, files):
    """Write each (path, text or bytes) of files; report each on stderr. A write that fails
    goes to a file of its own in the temporary directory instead, and OutputError (one line,
    exit 2) says where, once every file has been tried."""
    failed = []
    for path, data in files:
        try:
            _write(path, data)
        except OSError as exc:
            import tempfile  # only now: it imports shutil and random (~10 ms of every start)
            fd, fallback = tempfile.mkstemp(prefix=f"bpfsight-{tool}-",
                                            suffix=os.path.splitext(path)[1])
            os.close(fd)
            _write(fallback, data)
            failed.append(f"cannot write {path} ({exc.strerror}): saved to {fallback} instead")
            continue
        print(f"wrote {path}", file=sys.stderr)
    if failed:
        raise OutputError("; ".join(failed))


def _write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
