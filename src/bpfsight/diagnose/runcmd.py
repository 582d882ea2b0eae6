"""`bpfsight diagnose -- CMD ARGS...`: run a command in a cgroup of its own and diagnose its
whole life, children included (they inherit the cgroup); the exit status is the command's, and
the report goes to stderr (the command keeps stdout), as with `time` or `perf stat --`.
Ctrl-C reaches the command from the terminal; SIGTERM sent to diagnose is passed on to it.
Either way diagnose reports once the command has ended."""
import contextlib
import os
import shutil
import signal
import sys
import time

from ..errors import UsageError
from ..target import cgroup2_root
from ..report.output import Output


def run_command(tool, args):
    from .command import Target
    if shutil.which(args.command[0]) is None:
        raise UsageError(f"command not found: {args.command[0]!r}")
    root = cgroup2_root()
    cgroup = os.path.join(root, f"bpfsight-diagnose-{os.getpid()}")
    try:
        os.mkdir(cgroup)
    except OSError as exc:
        raise UsageError(f"cannot make a cgroup for the command under {root}: {exc.strerror}")
    out = Output(json_mode=args.json, stream=sys.stderr)
    status = {}
    # The command starts now, in its cgroup, but waits before exec until the window opens:
    # the window then begins with it present, and its children are born inside the window.
    pid, gate = _spawn_gated(args.command, cgroup)

    def run():
        """Let the command go (the programs are attached now) and wait for it to end."""
        started = time.monotonic()
        os.close(gate)
        _, wstatus, usage = os.wait4(pid, 0)
        # its CPU time and that of the children it waited for: the kernel's own account
        status.update({"argv": args.command, "pid": pid,
                       "exit_status": os.waitstatus_to_exitcode(wstatus),
                       "wall_s": round(time.monotonic() - started, 3),
                       "cpu_s": round(usage.ru_utime + usage.ru_stime, 4)})
        return dict(status)

    try:
        with _passed_on(pid):
            report = tool.measure(Target(cgroup=cgroup, label=f"`{' '.join(args.command)}`"),
                                  out, run, "while it runs")
        tool.emit(report, args, out)
    finally:
        if not status:  # the window never opened: the command must not run
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            try:
                os.close(gate)
            except OSError:
                pass
        _remove(cgroup)
    code = status.get("exit_status", 1)
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention


@contextlib.contextmanager
def _passed_on(pid):
    """While the command runs: SIGTERM goes on to it, and SIGINT (which the terminal sends the
    command too) is left to it; the wait for its end then finishes, and the report follows."""
    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM)),
           signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: None)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _spawn_gated(argv, cgroup):
    """Fork a child that joins cgroup, waits until the returned gate fd is closed, then execs
    argv (exit status 127 if it cannot). Returns (pid, gate)."""
    read_end, gate = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing but system calls until exec
        try:
            os.close(gate)
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write("0")
            os.read(read_end, 1)  # returns once diagnose closes the other end
            os.close(read_end)
            os.execvp(argv[0], argv)
        except BaseException as exc:  # noqa: BLE001 - the child must never return
            try:
                os.write(2, f"bpfsight diagnose: cannot run {argv[0]}: {exc}\n".encode())
            finally:
                os._exit(127)
    os.close(read_end)
    return pid, gate


def _remove(cgroup):
    """Remove the command's cgroup; one a process it left running still holds stays, said in
    one line."""
    try:
        os.rmdir(cgroup)
    except OSError:
        left = open(os.path.join(cgroup, "cgroup.procs")).read().split()
        print(f"bpfsight diagnose: {len(left)} processes the command started are still "
              f"running in {cgroup}", file=sys.stderr)
