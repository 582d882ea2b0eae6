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
import os
import re
import time

PROCESS_LABELS = ("comm", "cgroup", "container_id", "pod_uid")
CGROUP_ROOT = "/sys/fs/cgroup"
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


class CgroupNames:
    """cgroup v2 id -> (cgroup, container_id, pod_uid), for the per-process metrics the kernel
    keys by comm and cgroup id (bpf/include/group.bpf.h) along with the last process it saw
    there. That process's /proc/PID/cgroup names the id as the per-pid labels always were named
    (relative inside a cgroup namespace); once it has exited, or moved on (the path's inode is
    not the id), the cgroup v2 mount is walked: a directory's inode number is its id. Ids are
    never reused, so names found are kept (up to `limit`)."""

    def __init__(self, root=CGROUP_ROOT, limit=8192):
        self.root = root
        self.limit = limit
        self._names = {}

    def __call__(self, cgroup_id, pid):
        found = self._names.get(cgroup_id)
        if found is None:
            path = cgroup_of(pid) if pid else ""
            if not path or _inode(self.root + path) not in (None, cgroup_id):
                self._walk()
                found = self._names.get(cgroup_id)
                if found is None:  # gone before anyone named it
                    return cgroup_labels("")
            else:
                found = self._keep(cgroup_id, path)
        return found

    def _keep(self, cgroup_id, path):
        if len(self._names) >= self.limit:
            self._names.clear()
        found = self._names[cgroup_id] = cgroup_labels(path)
        return found

    def _walk(self):
        """Name every cgroup under the mount (readdir's inode numbers: no stat per directory)."""
        stack = [(self.root, "")]
        if _inode(self.root) is not None:
            self._keep(_inode(self.root), "/")
        while stack:
            where, path = stack.pop()
            try:
                with os.scandir(where) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            self._keep(e.inode(), f"{path}/{e.name}")
                            stack.append((e.path, f"{path}/{e.name}"))
            except OSError:
                pass


def _inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
