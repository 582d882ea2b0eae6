"""A memory cgroup with a limit, for tests that need reclaim without starving the machine.
Works on cgroup v1 (memory controller at /sys/fs/cgroup/memory) and v2."""
import os
import time

V1 = "/sys/fs/cgroup/memory"
V2 = "/sys/fs/cgroup"


class MemCgroup:
    def __init__(self, name, limit_bytes):
        self.v1 = os.path.isfile(os.path.join(V1, "memory.limit_in_bytes"))
        if not self.v1:
            with open(os.path.join(V2, "cgroup.subtree_control"), "w") as f:
                f.write("+memory")
        self.path = os.path.join(V1 if self.v1 else V2, f"{name}-{os.getpid()}")
        os.mkdir(self.path)
        self._write("memory.limit_in_bytes" if self.v1 else "memory.max", limit_bytes)

    def _write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def _read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def add(self, pid):
        self._write("cgroup.procs", pid)

    def usage(self):
        """Bytes charged now (page cache included)."""
        return int(self._read("memory.usage_in_bytes" if self.v1 else "memory.current"))

    def limit_hits(self):
        """How often a charge hit the limit: v1's failcnt (one per failed charge attempt, so
        at least one per reclaim) or v2's max events (one per reclaim)."""
        if self.v1:
            return int(self._read("memory.failcnt"))
        events = dict(line.split() for line in self._read("memory.events").splitlines())
        return int(events["max"])

    def remove(self):
        for _ in range(50):  # the last task's exit is asynchronous
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
