"""Bounded loopback TCP workloads for the TCP tools' tests, run as gated workloads
(tests/workload.py) so a tool can attach with -p PID first. Each reports what it did as one
JSON word after "done"; the tests compare the tools' figures with it."""
import json
import socket

from toolrun import trace_gated

# n sessions, one after the other: the client sends `size` bytes and half-closes, the server
# reads to EOF, replies `reply` bytes and closes. Both ends live in the workload process.
# Each end also reports when (CLOCK_MONOTONIC ns, bpf_ktime_get_ns's clock) its steps began or
# ended, so a tool's timings can be bounded by the workload's own: per client port, "times" is
# [connect called, connect returned, shutdown called, EOF read] and "served" is [first data
# read, close called] on the server's socket for that client.
SESSIONS = """
import json, socket, sys, threading, time
n, size, reply, port = map(int, sys.argv[1:5])
now = time.monotonic_ns
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(n); port = srv.getsockname()[1]
received, served = [], {}
def serve():
    for _ in range(n):
        c, peer = srv.accept(); got = 0; first = None
        while True:
            d = c.recv(1 << 16)
            if not d: break
            if first is None: first = now()
            got += len(d)
        received.append(got)
        c.sendall(b"r" * reply); served[peer[1]] = [first, now()]; c.close()
t = threading.Thread(target=serve); t.start()
clients, replies, times = [], [], {}
for _ in range(n):
    c = socket.socket(); t0 = now(); c.connect(("127.0.0.1", port)); t1 = now()
    clients.append(c.getsockname()[1])
    c.sendall(b"s" * size); t2 = now(); c.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        d = c.recv(1 << 16)
        if not d: break
        got += len(d)
    times[clients[-1]] = [t0, t1, t2, now()]
    replies.append(got); c.close()
t.join(); srv.close()
result = json.dumps({"port": port, "clients": clients, "received": received,
                     "replies": replies, "times": times, "served": served},
                    separators=(",", ":"))
"""

# n connects to `port`, where nothing listens: each is refused (the SYN is dropped, a RST sent)
REFUSED = """
import json, socket, sys
n, port = map(int, sys.argv[1:3])
clients, refused = [], 0
for _ in range(n):
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        refused += 1
    clients.append(c.getsockname()[1]); c.close()
result = json.dumps({"clients": clients, "refused": refused}, separators=(",", ":"))
"""

# a listener with backlog b that never accepts, and n non-blocking connects to it. The queue
# takes b + 1 connections (the kernel refuses a handshake only once it is *over* b); each of
# those connects waits until the kernel shows its connection queued (the listener's accept-queue
# length, rx_queue of its LISTEN line in /proc/net/tcp) before the next one starts, so every
# handshake sees exactly the ones before it however late the kernel processes the packets
# (a fixed sleep here would assume how fast softirqs run). The SYNs of the rest find the queue
# full and are dropped. "queued" is the kernel's own accept-queue length at the end.
BACKLOG = """
import json, socket, struct, sys, time
b, n = map(int, sys.argv[1:3])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(b)
port = srv.getsockname()[1]
local = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton("127.0.0.1"))[0], port)
def queued():
    with open("/proc/net/tcp") as f:
        for line in f:
            fields = line.split()
            if fields[1] == local and fields[3] == "0A":  # TCP_LISTEN
                return int(fields[4].split(":")[1], 16)
    raise AssertionError("listener not in /proc/net/tcp")
cs = []
for i in range(n):
    c = socket.socket(); c.setblocking(False)
    c.connect_ex(("127.0.0.1", port)); cs.append(c)
    deadline = time.monotonic() + 30  # a hang guard only: loopback needs microseconds
    while i <= b and queued() < i + 1:
        assert time.monotonic() < deadline, ("handshake not queued", i, queued())
        time.sleep(0.001)
result = json.dumps({"port": port, "queued": queued()}, separators=(",", ":"))
"""


def traced(tool, *tool_args, work, work_args, by_pid=True):
    """(tool records, the workload's report, its pid)."""
    recs, words, pid = trace_gated(tool, *tool_args, work=work, work_args=work_args,
                                   by_pid=by_pid)
    return recs, json.loads(words[0]), pid


def sessions(tool, *tool_args, n=4, size=200_000, reply=50_000, port=0, by_pid=True):
    return traced(tool, *tool_args, work=SESSIONS, work_args=(n, size, reply, port),
                  by_pid=by_pid)


class ClosedPort:
    """A loopback port bound but not listening: nobody else can take it, and SYNs to it find
    no socket."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        return self.port

    def __exit__(self, *exc):
        self.sock.close()


def free_port():
    """A port that was free a moment ago (for filters that must name the port in advance)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
