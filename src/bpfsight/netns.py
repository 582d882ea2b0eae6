"""Entering a named network namespace (`ip netns add NAME`, /run/netns/NAME) for the calling
thread, to resolve an interface there and attach to it: interface indexes, and the links that
name them, belong to a namespace."""
import contextlib
import ctypes
import os

from .errors import UsageError

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(name):
    """The calling thread in network namespace `name` (None: stay where it is), then back."""
    if name is None:
        yield
        return
    path = os.path.join(NETNS_DIR, name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise UsageError(f"no network namespace {name!r} (not in {NETNS_DIR}; see ip netns list)")
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def interface_index(name):
    """The index of interface `name` in the calling thread's namespace."""
    import socket
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise UsageError(f"no network interface {name!r}") from None
