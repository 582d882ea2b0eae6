"""What to trace: a process (-p) or a cgroup (-c), resolved and checked before anything loads,
then written into the BPF object's filter globals (the filter runs in the kernel)."""
import os

from .errors import UsageError

CGROUP2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def pid_arg(text):
    """argparse type for -p: a positive integer (existence is checked in resolve_pid)."""
    try:
        pid = int(text)
    except ValueError:
        raise UsageError(f"invalid PID {text!r}: expected a number") from None
    if pid <= 0:
        raise UsageError(f"invalid PID {text!r}: must be positive")
    return pid


def uid_arg(text):
    """argparse type for -u: a numeric UID or a user name."""
    if text.isdigit():
        return int(text)
    import pwd
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise UsageError(f"unknown user {text!r}") from None


def resolve_pid(pid):
    if pid is not None and not os.path.isdir(f"/proc/{pid}"):
        raise UsageError(f"no process with PID {pid}")
    return pid


def cgroup2_root():
    for root in CGROUP2_ROOTS:
        try:
            with open("/proc/self/mounts") as mounts:
                if any(line.split()[1] == root and line.split()[2] == "cgroup2" for line in mounts):
                    return root
        except OSError:
            pass
    raise UsageError("no cgroup v2 hierarchy is mounted; -c needs one")


def resolve_cgroup(path):
    """(id, level) of a cgroup v2 directory: its inode number and its depth below the root.
    A path relative to the cgroup v2 root is accepted too."""
    root = cgroup2_root()
    full = path if os.path.isabs(path) and path.startswith(root) else os.path.join(root, path.lstrip("/"))
    if not os.path.isdir(full):
        raise UsageError(f"no cgroup {path!r} under {root}")
    rel = os.path.relpath(os.path.realpath(full), os.path.realpath(root))
    level = 0 if rel == "." else len(rel.split(os.sep))
    return os.stat(full).st_ino, level


def apply_target(spec, pid=None, cgroup=None):
    """Write the target filter into spec's globals (see bpf/include/common.bpf.h)."""
    if spec.has_global("self_tgid"):
        spec.set_global("self_tgid", os.getpid())
    if pid is not None:
        spec.set_global("targ_tgid", resolve_pid(pid))
    if cgroup is not None:
        cgid, level = resolve_cgroup(cgroup)
        spec.set_globals(targ_cgid=cgid, targ_cglevel=level)
