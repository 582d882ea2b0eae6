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


class ProcessLabels:
    """pid -> (cgroup, container_id, pod_uid), looked up once per pid. The cache is bounded:
    it is cleared when it passes `limit` entries (a fork bomb makes many pids, each needed
    only until its kernel key is first labelled)."""

    def __init__(self, limit=8192):
        self.limit = limit
        self._cache = {}

    def __call__(self, pid, comm):
        """The PROCESS_LABELS tuple of a process, given the comm the kernel recorded."""
        found = self._cache.get(pid)
        if found is None:
            if len(self._cache) >= self.limit:
                self._cache.clear()
            found = self._cache[pid] = cgroup_labels(cgroup_of(pid))
        return (comm,) + found
