"""Every run checks its own books against figures the kernel keeps apart from diagnose's BPF
programs, and reports each check (name, measured, expected, tolerance, ok). A failed check is
never silent: the terminal shows it and the verdict says it is less certain."""

# Tolerances, each with its reason:
# - capacity: the window's edges are taken in user space around the programs' clock reads;
#   2% covers that skew and nothing else (on-CPU time cannot exceed the CPUs' time).
CAPACITY_TOLERANCE = 0.02
# - host busy: /proc/stat charges interrupt time on idle CPUs (no thread) and its per-tick
#   accounting is USER_HZ-grained: 10% or 0.3 s.
HOST_BUSY_TOLERANCE, HOST_BUSY_FLOOR_S = 0.10, 0.3
# - per process: schedstat is read before the programs attach and after they detach, a few
#   milliseconds outside the window: 10% or 50 ms.
PROCESS_TOLERANCE, PROCESS_FLOOR_S = 0.10, 0.05
# - thread-seconds: threads that start or end between the /proc snapshot and the attach are
#   the only gap: 5%.
THREADS_TOLERANCE = 0.05


def check(name, measured, expected, tolerance, ok, detail=""):
    return {"name": name, "measured": round(measured, 4), "expected": round(expected, 4),
            "tolerance": round(tolerance, 4), "ok": bool(ok), "detail": detail}


def within(measured, expected, rel, floor):
    tol = max(rel * expected, floor)
    return tol, abs(measured - expected) <= tol


def capacity(on_cpu_s, ncpu, window_s):
    limit = ncpu * window_s
    tol = CAPACITY_TOLERANCE * limit
    return check("on_cpu <= CPUs x window", on_cpu_s, limit, tol, on_cpu_s <= limit + tol,
                 f"{ncpu} CPUs x {window_s:.2f} s")


def host_busy(on_cpu_s, busy_s):
    tol, ok = within(on_cpu_s, busy_s, HOST_BUSY_TOLERANCE, HOST_BUSY_FLOOR_S)
    return check("host on_cpu = /proc/stat busy", on_cpu_s, busy_s, tol, ok,
                 "every thread's on-CPU time against the CPUs' busy time")


def process_figures(pid, on_cpu_s, runq_s, before, after, ended=0):
    """on-CPU and run-queue time of one process against its threads' schedstat deltas
    (before/after: {tid: (exec_ns, delay_ns)}); threads that ended in the window (`ended`, as
    the kernel side counted them, or missing from `after`) took their figures with them, so
    with any the expected figure is a lower bound."""
    exec_s = sum(a[0] - before.get(t, (0, 0))[0] for t, a in after.items()) / 1e9
    delay_s = sum(a[1] - before.get(t, (0, 0))[1] for t, a in after.items()) / 1e9
    exited = max(len(set(before) - set(after)), ended)
    out = []
    for what, measured, expected in (("on_cpu", on_cpu_s, exec_s), ("runqueue", runq_s, delay_s)):
        tol, ok = within(measured, expected, PROCESS_TOLERANCE, PROCESS_FLOOR_S)
        if exited:
            ok = measured >= expected - tol
        out.append(check(f"pid {pid} {what} = schedstat", measured, expected, tol, ok,
                         f"{len(after)} threads" + (f", {exited} exited: a lower bound"
                                                    if exited else "")))
    return out


def thread_seconds(accounted_s, threads_at_start, window_s, lifetimes, end_ns):
    """Accounted thread-seconds against threads x window, less the time threads born or ended
    in the window did not live."""
    born = lifetimes["births"] * end_ns - lifetimes["birth_ns"]
    died = lifetimes["deaths"] * end_ns - lifetimes["death_ns"]
    expected = threads_at_start * window_s + (born - died) / 1e9
    tol = THREADS_TOLERANCE * expected
    return check("thread-seconds = threads x window", accounted_s, expected, tol,
                 abs(accounted_s - expected) <= tol,
                 f"{threads_at_start} threads at start, {lifetimes['births']} started, "
                 f"{lifetimes['deaths']} ended")


def command_cpu(on_cpu_s, rusage_cpu_s):
    """A command's on-CPU time against its rusage (its own and its waited-for children's CPU
    time, from wait4): 10% or 50 ms, as for a process. Children it did not wait for are
    missing from rusage, so more on CPU than rusage says is allowed then, never less."""
    tol, ok = within(on_cpu_s, rusage_cpu_s, PROCESS_TOLERANCE, PROCESS_FLOOR_S)
    return check("command on_cpu = its rusage", on_cpu_s, rusage_cpu_s, tol,
                 ok or on_cpu_s > rusage_cpu_s, "wait4() rusage of the command and its children")
