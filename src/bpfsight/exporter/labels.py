"""Attribution labels of a process: comm, its cgroup v2 path, and the container id and
Kubernetes pod UID where the path shows them.

Paths seen (systemd and cgroupfs drivers; inside a pod with a private cgroup namespace they
are relative, e.g. "/../../kubepods-...", which the patterns still match):
  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/
      cri-containerd-<64 hex>.scope
  /kubepods/besteffort/pod<uid>/<64 hex>
  /system.slice/docker-<64 hex>.scope, /docker/<64 hex>, crio-<64 hex>.scope,
  libpod-<64 hex>.scope
"""
import re
import time

PROCESS_LABELS = ("comm", "cgroup", "container_id", "pod_uid")
_CONTAINER = re.compile(r"(?:^|[-/])([0-9a-f]{64})(?:\.scope)?$")
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


def cgroup_labels(path):
    """(cgroup, container_id, pod_uid) of a cgroup v2 path; "" where the path shows none."""
    if not path:
        return ("", "", "")
    last = path.rstrip("/").rsplit("/", 1)[-1]
    container = _CONTAINER.search(last)
    pod = _POD.search(path)
    return (path, container.group(1) if container else "",
            pod.group(1).replace("_", "-") if pod else "")


def cgroup_of(pid):
    """The cgroup v2 path of pid ("0::/path" in /proc/PID/cgroup), "" once it has exited."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return ""


def comm_now(pid):
    """The task's comm now, None once it has exited."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


class ProcessLabels:
    """pid -> PROCESS_LABELS, looked up once per pid. The comm is the task's comm at that
    moment when it still runs, else the one the kernel recorded: the tools record it at a
    process's first event, which for a program started by fork and exec comes between the
    two, under its parent's name. The cache only spares a scrape reading /proc twice for one
    pid (several kernel keys per task): it is emptied after `ttl_s`, before a pid can be
    reused, and when it passes `limit` entries."""

    def __init__(self, limit=8192, ttl_s=1.0, clock=time.monotonic):
        self.limit = limit
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache = {}
        self._since = clock()

    def __call__(self, pid, recorded_comm):
        now = self._clock()
        if now - self._since > self.ttl_s or len(self._cache) >= self.limit:
            self._cache.clear()
            self._since = now
        found = self._cache.get(pid)
        if found is None:
            found = self._cache[pid] = ((comm_now(pid) or recorded_comm,)
                                        + cgroup_labels(cgroup_of(pid)))
        return found
