"""tcpretrans cross-checked against the kernel's own RetransSegs counter, on a lossy path
between network namespaces the test creates (so no other traffic shares the counter)."""
import json
import subprocess

import pytest

from helpers import Running, assert_released, bpf_objects_of
from netns import LossyPath
from toolrun import assert_usage_error, records

pytestmark = pytest.mark.bpf

SERVER = """
import socket
s = socket.socket(); s.bind(("10.250.2.1", 5001)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n = 0
while True:
    d = c.recv(1 << 16)
    if not d: break
    n += len(d)
c.close()
print(n, flush=True)
"""

# The client waits for the server's close so that, when it exits, it has nothing left in flight
# that could still be retransmitted after the counter is read.
CLIENT = """
import socket, sys
c = socket.create_connection(("10.250.2.1", 5001))
print(c.getsockname()[1], flush=True)
c.sendall(b"x" * int(sys.argv[1])); c.shutdown(socket.SHUT_WR)
c.recv(1)  # the server's FIN: all our data and our FIN are acknowledged, nothing left to resend
c.close()
"""

SIZE = 2_000_000


def recursion_misses(prog_ids):
    """Times the kernel skipped the tcpretrans programs among prog_ids because one was already
    running on that CPU (a retransmit in a softirq that interrupted it): the kernel's own count,
    bpf_prog_info.recursion_misses, read while the programs are still loaded."""
    missed = 0
    for prog_id in prog_ids:
        res = subprocess.run(["bpftool", "prog", "show", "id", str(prog_id), "--json"],
                             capture_output=True, text=True)
        if res.returncode == 0:
            info = json.loads(res.stdout)
            if info.get("name", "").startswith("tcpretrans"):
                missed += info.get("recursion_misses", 0)
    return missed


def agrees(seen, delta, missed, failed):
    """The tool counts retransmit events, RetransSegs segments. Subtracted, as the kernel
    counts them (how many depends on what else the machine does, so they are read, not
    guessed):
      - missed: retransmits the kernel did not let the tool's program see because one was
        already running on that CPU (its recursion-miss count, host-wide: at most that many);
      - failed: retransmits whose transmission failed: RetransSegs counts them, the
        tracepoint reports them with an error and the tool skips them; TCPRetransFail counts
        them (and attempts aborted earlier, which neither counts).
    What remains is not timing: now and then one retransmitted skb carries more than one
    segment (with bpf_stats on, the program ran exactly `seen` times while RetransSegs grew by
    1 to 9 more in 150-250, no misses, no failures; neither tcp_retrans_collapse=0 nor the
    one-segment link removes it, and no counter tells those skbs apart), hence 10% below.
    +2 covers a retransmit in flight when the counter is read."""
    return 0.9 * (delta - missed - failed) <= seen <= delta + 2


def transfer(path, *tool_args):
    """Send SIZE bytes A -> B through the lossy router while the tool runs; returns (tool
    records, the sender's RetransSegs delta, the sender's port, the tool's recursion misses, the
    sender's TCPRetransFail delta)."""
    tool = Running("tcpretrans", "--json", *tool_args).wait_attached()
    held = bpf_objects_of(tool.proc.pid)
    before = path.snmp(path.a, "Tcp", "RetransSegs")
    failed_before = path.netstat(path.a, "TcpExt", "TCPRetransFail")
    server = path.popen(path.b, SERVER)
    assert server.stdout.readline().strip() == "ready"
    client = path.popen(path.a, CLIENT, SIZE)
    sport = int(client.stdout.readline())
    assert int(server.stdout.readline()) == SIZE
    client.wait(), server.wait()
    delta = path.snmp(path.a, "Tcp", "RetransSegs") - before
    failed = path.netstat(path.a, "TcpExt", "TCPRetransFail") - failed_before
    missed = recursion_misses(held["prog"])
    rc, out, err = tool.stop()
    assert rc == 0 and "Traceback" not in err, err
    assert_released(held)
    return records(out), delta, sport, missed, failed


@pytest.fixture
def lossy():
    with LossyPath() as path:
        yield path


def test_each_retransmit_matches_retranssegs(lossy):
    recs, delta, sport, missed, failed = transfer(lossy)
    mine = [r for r in recs if r["laddr"] == LossyPath.SENDER]
    # TCP grows its window until the 4 kB tbf queue overflows: there are always losses
    assert delta > 0, "the tbf queue dropped nothing: no retransmits to check"
    assert agrees(len(mine), delta, missed, failed), (len(mine), delta, missed, failed)
    for r in mine:
        assert (r["lport"], r["raddr"], r["rport"], r["ip"]) == (sport, LossyPath.RECEIVER, 5001, 4)
        assert r["state"] in ("ESTABLISHED", "FIN_WAIT1", "CLOSING", "LAST_ACK"), r


def test_count_mode_matches_retranssegs(lossy):
    recs, delta, sport, missed, failed = transfer(lossy, "-c")
    mine = [r for r in recs if r["laddr"] == LossyPath.SENDER]
    assert delta > 0
    assert [(r["lport"], r["rport"]) for r in mine] == [(sport, 5001)], mine
    assert agrees(mine[0]["retransmits"], delta, missed, failed), (mine, delta, missed, failed)


@pytest.mark.parametrize("args", [["-l"], ["-4", "-6"], ["--duration", "0"]])
def test_bad_arguments(args):
    assert_usage_error("tcpretrans", *args)
