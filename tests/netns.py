"""Private network namespaces for the network tools' tests: traffic stays on addresses inside
namespaces the test creates, never touching the host's interfaces, and everything is deleted
afterwards. Each namespace has its own /proc/net/snmp, which makes the kernel's counters an
exact cross-check free of the host's own traffic."""
import os
import subprocess
import sys


def sh(*cmd):
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True)


class Namespaces:
    """Network namespaces made and deleted by a test (subclasses lay out the links)."""

    def __init__(self, *names):
        tag = f"bpfs{os.getpid()}"
        self.names = [f"{tag}{n}" for n in names]
        self.procs = []

    def __enter__(self):
        try:
            for ns in self.names:
                sh("ip", "netns", "add", ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _build(self):
        raise NotImplementedError

    def __exit__(self, *exc):
        for p in self.procs:  # a test that failed midway must leave no process blocked
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def popen(self, ns, code, *args):
        """Python code run inside namespace ns (a child process, killed on exit)."""
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code,
                              *map(str, args)], stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def snmp(self, ns, proto, field):
        """A counter from the namespace's own /proc/net/snmp, e.g. ('Tcp', 'RetransSegs')."""
        text = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"],
                              capture_output=True, text=True, check=True).stdout
        return snmp_field(text, proto, field)

    def netstat(self, ns, proto, field):
        """A counter from the namespace's own /proc/net/netstat, e.g. ('TcpExt',
        'TCPRetransFail')."""
        text = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/netstat"],
                              capture_output=True, text=True, check=True).stdout
        return snmp_field(text, proto, field)


class LossyPath(Namespaces):
    """sender (ns A) -> router (ns R) -> receiver (ns B). The router's link towards B has a tbf
    qdisc with a tiny queue, so bursts are dropped there: the sender sees real losses and
    retransmits (a qdisc on the sender itself would only push back, never lose). The sender's
    link allows one segment per packet, so retransmitted packets and segments coincide."""

    SENDER, RECEIVER = "10.250.1.1", "10.250.2.1"

    def __init__(self, rate="20mbit", burst="4kb", limit="4kb"):
        super().__init__("a", "r", "b")
        self.a, self.r, self.b = self.names
        self.tbf = (rate, burst, limit)

    def _build(self):
        a, r, b = self.a, self.r, self.b
        sh("ip", "link", "add", "name", "a0", "netns", a, "type", "veth", "peer", "name", "r0", "netns", r)
        sh("ip", "link", "add", "name", "r1", "netns", r, "type", "veth", "peer", "name", "b0", "netns", b)
        for ns, dev, cidr in ((a, "a0", "10.250.1.1/24"), (r, "r0", "10.250.1.2/24"),
                              (r, "r1", "10.250.2.2/24"), (b, "b0", "10.250.2.1/24")):
            sh("ip", "-n", ns, "addr", "add", cidr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", a, "route", "add", "default", "via", "10.250.1.2")
        sh("ip", "-n", b, "route", "add", "default", "via", "10.250.2.2")
        sh("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", a, "link", "set", "a0", "gso_max_segs", "1")
        rate, burst, limit = self.tbf
        sh("ip", "netns", "exec", r, "tc", "qdisc", "add", "dev", "r1", "root", "tbf",
           "rate", rate, "burst", burst, "limit", limit)


class VethPath(Namespaces):
    """Two namespaces joined by a veth pair (this kernel has no netem to add a delay)."""

    A, B = "10.250.3.1", "10.250.3.2"

    def __init__(self):
        super().__init__("va", "vb")
        self.a, self.b = self.names

    def _build(self):
        sh("ip", "link", "add", "name", "a0", "netns", self.a, "type", "veth", "peer", "name",
           "b0", "netns", self.b)
        for ns, dev, cidr in ((self.a, "a0", f"{self.A}/24"), (self.b, "b0", f"{self.B}/24")):
            sh("ip", "-n", ns, "addr", "add", cidr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")


def snmp_field(text, proto, field):
    rows = [line.split() for line in text.splitlines() if line.startswith(proto + ":")]
    names, values = rows[0], rows[1]
    return int(values[names.index(field)])
