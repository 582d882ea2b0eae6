"""tracefs, which classic tracepoints and uprobes need, mounted by the runtime before a tool
starts where the system has not mounted it (a container, a minimal VM). Feature probes only
look: they never change the system."""
import os

from .bpf.features import TRACEFS


def mount_tracefs():
    """Mount tracefs at /sys/kernel/tracing unless it is there; True when it is usable."""
    if os.path.isdir(os.path.join(TRACEFS, "events")):
        return True
    ret = os.system(f"mount -t tracefs nodev {TRACEFS} >/dev/null 2>&1")
    return ret == 0 and os.path.isdir(os.path.join(TRACEFS, "events"))
