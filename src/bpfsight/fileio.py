"""What the file tools (filetop, fileslower, opensnoop, vfsstat) share in user space: naming a
file the kernel identified by (dev, inode, fd), and switching off syscall tracepoints this
architecture does not have (open, creat, mkdir... are missing on arm64)."""
import os
import stat

from .bpf import features


def user_dev(kdev):
    """A superblock's s_dev (kernel encoding: major << 20 | minor) as os.stat's st_dev."""
    return os.makedev(kdev >> 20, kdev & 0xFFFFF)


def file_type(mode):
    """BCC's T column: R regular file, S socket, O anything else."""
    if stat.S_ISREG(mode):
        return "R"
    return "S" if stat.S_ISSOCK(mode) else "O"


def full_path(pid, fd, kdev, ino, name):
    """The full path of the file process pid has (or had) open as fd, checked to still be the
    same inode; the kernel-side dentry name when the process or fd is gone or reused. Files
    without a name (pipes, sockets) get the kernel's label, e.g. "pipe:[1234]"."""
    link = f"/proc/{pid}/fd/{fd}"
    fallback = name or f"[inode {ino}]"
    try:
        st = os.stat(link)
        target = os.readlink(link)
    except OSError:
        return fallback
    if st.st_ino != ino or st.st_dev != user_dev(kdev):
        return fallback
    if not target.startswith("/"):
        return name or target
    return target[:-len(" (deleted)")] if target.endswith(" (deleted)") else target


def drop_absent_syscalls(spec):
    """Switch off programs on syscalls:* tracepoints this kernel lacks, so select_hooks and
    attach only see the ones that exist. Returns the names of those switched off."""
    dropped = []
    for prog in spec.programs.values():
        kind, _, rest = prog.section.partition("/")
        category, _, event = rest.partition("/")
        if kind == "tracepoint" and category == "syscalls" and prog.autoload and \
                not features.tracepoint_exists(category, event):
            prog.autoload = False
            dropped.append(prog.name)
    return dropped
