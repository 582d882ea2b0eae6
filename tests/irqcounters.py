"""Cross-checking hardirqs and softirqs against the kernel's own interrupt counters
(/proc/interrupts, /proc/softirqs), read around the tool's window."""
import json
import signal

from helpers import Running

MIN_EVENTS = 300  # compare only counters that moved this much inside the window


def window(tool_args, read_counters, work):
    """The tool's JSON records and two counter deltas that bracket its window: `inner` from
    after it attached to before it was stopped (it saw all of these), `outer` from before it
    started to after it exited (it cannot have seen more). On a busy machine the edges of the
    window hold other interrupts; the bracket keeps them from deciding the test."""
    first = read_counters()
    tool = Running(*tool_args, "--json").wait_attached()
    try:
        before = read_counters()
        work()
        after = read_counters()
    finally:
        rc, out, err = tool.stop(signal.SIGINT)
    last = read_counters()
    assert rc == 0, err
    inner = {k: after[k] - before.get(k, 0) for k in after}
    outer = {k: last[k] - first.get(k, 0) for k in last}
    return inner, outer, [json.loads(line) for line in out.splitlines()]


def assert_counts_match(inner, outer, measured, required):
    """Within 10% of the bracket, for every counter the workload moved enough to tell."""
    compared = {k: (measured.get(k, 0), n, outer[k])
                for k, n in inner.items() if n >= MIN_EVENTS}
    assert required(compared), (compared, inner)
    for name, (got, low, high) in compared.items():
        assert 0.9 * low <= got <= 1.1 * high, (name, got, low, high)
