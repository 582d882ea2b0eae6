"""pktstat on a veth between two namespaces the test makes: totals against the interface's
own counters (ip -s link, read just after attaching and just before stopping), and a known
UDP flow exactly (count and size of datagrams the test sent); tc (tcx links) and XDP; and
nothing left attached after SIGKILL."""
import json
import signal
import subprocess
import time

import pytest

from helpers import Running
from netns import VethPath, sh
from toolrun import assert_usage_error

pytestmark = pytest.mark.bpf

# services on low ports, as real ones are: the row's port is the lower of the two
UDP_PORT, DATAGRAMS, PAYLOAD = 5005, 200, 1000
HEADERS = 8 + 20 + 14  # UDP, IPv4 and Ethernet
WIRE, REPLY = PAYLOAD + HEADERS, 1 + HEADERS  # each datagram, and the 1-byte answer to it

RECEIVER = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((sys.argv[1], int(sys.argv[2])))
t = socket.socket(); t.bind((sys.argv[1], int(sys.argv[2]) + 1)); t.listen(1)
print(t.getsockname()[1], flush=True)
got = 0
while got < int(sys.argv[3]):  # each datagram answered, so none is lost to a full buffer
    d, peer = u.recvfrom(65536)
    got += 1
    u.sendto(b"k", peer)
c, _ = t.accept(); n = 0
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    n += len(d)
print(got, n, flush=True)
"""

SENDER = """
import socket, sys
host, port, tcp_port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(n):
    u.sendto(b"u" * size, (host, port))
    u.recv(16)
c = socket.create_connection((host, tcp_port)); c.sendall(b"t" * (1 << 20)); c.close()
"""


def link_stats(ns, dev):
    out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show", dev], capture_output=True,
                         text=True, check=True).stdout
    s = json.loads(out)[0]["stats64"]
    return s["rx"]["packets"], s["rx"]["bytes"], s["tx"]["packets"], s["tx"]["bytes"]


@pytest.fixture
def path():
    with VethPath() as p:
        for ns in (p.a, p.b):  # no router solicitations or MLD reports while counting
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        yield p


def counted(path, *hook):
    receiver = path.popen(path.b, RECEIVER, path.B, UDP_PORT, DATAGRAMS)
    tcp_port = int(receiver.stdout.readline())
    tool = Running("pktstat", "-i", "b0", "--netns", path.b, "--json", *hook).wait_attached()
    before = link_stats(path.b, "b0")
    sender = path.popen(path.a, SENDER, path.B, UDP_PORT, tcp_port, DATAGRAMS, PAYLOAD)
    sender.wait(timeout=60)
    got, tcp_bytes = map(int, receiver.communicate(timeout=60)[0].split())
    after = link_stats(path.b, "b0")
    rc, out, err = tool.stop()
    assert rc == 0, err
    assert got == DATAGRAMS and tcp_bytes == 1 << 20
    rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return rows, [a - b for a, b in zip(after, before)], tcp_port


def totals(rows, direction):
    mine = [r for r in rows if r["dir"] == direction]
    return sum(r["packets"] for r in mine), sum(r["bytes"] for r in mine)


def test_tc_counts_match_the_interface_and_the_known_flow(path):
    rows, (rx_p, rx_b, tx_p, tx_b), tcp_port = counted(path)
    assert totals(rows, "in") == (rx_p, rx_b), (rows, rx_p, rx_b)
    assert totals(rows, "out") == (tx_p, tx_b), (rows, tx_p, tx_b)
    (udp,) = [r for r in rows if r["proto"] == "udp" and r["dir"] == "in"]
    assert (udp["port"], udp["packets"], udp["bytes"]) == (UDP_PORT, DATAGRAMS,
                                                           DATAGRAMS * WIRE), udp
    (answers,) = [r for r in rows if r["proto"] == "udp" and r["dir"] == "out"]
    assert (answers["port"], answers["packets"], answers["bytes"]) == (
        UDP_PORT, DATAGRAMS, DATAGRAMS * REPLY), answers
    tcp_in = [r for r in rows if r["proto"] == "tcp" and r["dir"] == "in"]
    assert [r["port"] for r in tcp_in] == [tcp_port] and tcp_in[0]["bytes"] > 1 << 20, rows
    assert not [r for r in rows if r["proto"] == "uncounted"], rows


def test_xdp_counts_ingress(path):
    rows, (rx_p, rx_b, _, _), _ = counted(path, "--xdp")
    # XDP sees whole frames; with an XDP program attached, veth counts received bytes
    # without their 14-byte Ethernet header (with tc, both include it)
    assert totals(rows, "in") == (rx_p, rx_b + 14 * rx_p), (rows, rx_p, rx_b)
    assert totals(rows, "out") == (0, 0), rows
    (udp,) = [r for r in rows if r["proto"] == "udp"]
    assert (udp["packets"], udp["bytes"]) == (DATAGRAMS, DATAGRAMS * WIRE), udp


def pktstat_programs():
    """Loaded programs named pktstat_*: one attached through a link lives as long as the link
    (this bpftool cannot show tcx links themselves)."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [p for p in json.loads(out) if p.get("name", "").startswith("pktstat_")]


def xdp_attached(ns, dev):
    out = subprocess.run(["ip", "netns", "exec", ns, "bpftool", "-j", "net", "show", "dev", dev],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["xdp"]


@pytest.mark.parametrize("hook", [[], ["--xdp"]])
def test_nothing_stays_attached_after_sigkill(path, hook):
    qdiscs = subprocess.run(["ip", "-n", path.b, "qdisc", "show", "dev", "b0"],
                            capture_output=True, text=True).stdout
    tool = Running("pktstat", "-i", "b0", "--netns", path.b, *hook).wait_attached()
    assert len(pktstat_programs()) == (1 if hook else 2), pktstat_programs()
    assert bool(xdp_attached(path.b, "b0")) == bool(hook)
    tool.proc.send_signal(signal.SIGKILL)
    tool.proc.wait(timeout=10)
    deadline = time.monotonic() + 10  # the kernel frees a dead process's links at once;
    while pktstat_programs() and time.monotonic() < deadline:  # its programs just after
        time.sleep(0.05)
    assert pktstat_programs() == [] and xdp_attached(path.b, "b0") == []
    assert subprocess.run(["ip", "-n", path.b, "qdisc", "show", "dev", "b0"],
                          capture_output=True, text=True).stdout == qdiscs


@pytest.mark.parametrize("args", [[], ["-i", "nosuchif0"], ["-i", "lo", "--netns", "nosuchns"],
                                  ["-i", "lo", "--tc", "--xdp"], ["-i", "lo", "-n", "0"]])
def test_bad_arguments(args):
    assert_usage_error("pktstat", *args)


def tc(path, *args):
    return subprocess.run(["ip", "netns", "exec", path.b, "tc", *args], capture_output=True,
                          text=True, check=True).stdout


def test_netlink_filters_count_the_same_and_go_at_exit(path):
    """--netlink (what a kernel without tcx links gets): the same exact totals; the clsact
    qdisc it added and its filters are gone after it stops."""
    before = tc(path, "qdisc", "show", "dev", "b0")
    rows, (rx_p, rx_b, tx_p, tx_b), _ = counted(path, "--netlink")
    assert totals(rows, "in") == (rx_p, rx_b) and totals(rows, "out") == (tx_p, tx_b), rows
    assert tc(path, "qdisc", "show", "dev", "b0") == before and "clsact" not in before


def test_netlink_leaves_an_existing_qdisc_as_it_was(path):
    sh("ip", "netns", "exec", path.b, "tc", "qdisc", "add", "dev", "b0", "clsact")
    tool = Running("pktstat", "-i", "b0", "--netns", path.b, "--netlink").wait_attached()
    assert "bpf" in tc(path, "filter", "show", "dev", "b0", "ingress")
    assert "bpf" in tc(path, "filter", "show", "dev", "b0", "egress")
    rc, _, err = tool.stop(signal.SIGTERM)
    assert rc == 0, err
    assert "clsact" in tc(path, "qdisc", "show", "dev", "b0")
    assert tc(path, "filter", "show", "dev", "b0", "ingress") == ""
    assert tc(path, "filter", "show", "dev", "b0", "egress") == ""


def test_exporter_counts_on_named_interfaces(path):
    """`exporter --interfaces NETNS/IFACE`: the packet and byte counters of one interface in
    a namespace grow by exactly what its own counters (ip -s link) grew by between two
    scrapes, and the known UDP flow shows under its port."""
    from promkit import Exporter, total
    receiver = path.popen(path.b, RECEIVER, path.B, UDP_PORT, DATAGRAMS)
    tcp_port = int(receiver.stdout.readline())
    iface = f"{path.b}/b0"
    with Exporter("--interfaces", iface, "--collectors", "syscount",
                  "--max-series", "1000") as exp:
        first, before = exp.scrape(), link_stats(path.b, "b0")
        sender = path.popen(path.a, SENDER, path.B, UDP_PORT, tcp_port, DATAGRAMS, PAYLOAD)
        sender.wait(timeout=60)
        receiver.communicate(timeout=60)
        time.sleep(1.1)  # past the collection cache
        last, after = exp.scrape(), link_stats(path.b, "b0")
    rx_p, rx_b, tx_p, tx_b = [a - b for a, b in zip(after, before)]

    def grew(name, **labels):
        return total(last, name, interface=iface, **labels) - \
            total(first, name, interface=iface, **labels)

    assert grew("bpfsight_interface_packets_total", direction="in") == rx_p > DATAGRAMS
    assert grew("bpfsight_interface_bytes_total", direction="in") == rx_b
    assert grew("bpfsight_interface_packets_total", direction="out") == tx_p
    assert grew("bpfsight_interface_bytes_total", direction="out") == tx_b
    udp = {"direction": "in", "protocol": "udp", "port": str(UDP_PORT)}
    assert grew("bpfsight_interface_packets_total", **udp) == DATAGRAMS
    assert grew("bpfsight_interface_bytes_total", **udp) == DATAGRAMS * WIRE


def test_exporter_interface_errors():
    assert "no network interface" in assert_usage_error("exporter", "--interfaces", "nosuch0")
    assert_usage_error("exporter", "--interfaces", "a/b/c")
    assert "--interfaces" in assert_usage_error("exporter", "--collectors", "pktstat")
