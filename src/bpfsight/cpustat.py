"""The scheduler's own accounts as /proc shows them: per-CPU busy and idle time (/proc/stat),
the ground truth that sampled figures (runqlen) and diagnose's USE figures lean on, and whether
per-task sched_info (schedstat's run_delay) is kept, which runqlat and diagnose read."""


def cpu_times():
    """{cpu: (busy_jiffies, total_jiffies)} per CPU (jiffies: USER_HZ ticks). Idle is idle +
    iowait (an iowait CPU runs nothing); steal counts as busy, as the guest could not run."""
    try:
        with open("/proc/stat") as f:
            text = f.read()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            v = [int(x) for x in vals]
            idle = v[3] + (v[4] if len(v) > 4 else 0)
            out[int(name[3:])] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


def sched_info_kept():
    """Whether the kernel keeps per-task sched_info: /proc/PID/schedstat exists, and this
    process's count of times it got a CPU is not 0 (older kernels without schedstats keep it
    only with delay accounting on)."""
    try:
        with open("/proc/self/schedstat") as f:
            fields = f.read().split()
    except OSError:
        return False
    return len(fields) == 3 and int(fields[2]) > 0
