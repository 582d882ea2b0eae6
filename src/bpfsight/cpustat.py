"""Per-CPU time from /proc/stat: the kernel's own account of how long each CPU was busy and
idle, the ground truth that sampled figures (runqlen) and diagnose's USE figures lean on."""


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
