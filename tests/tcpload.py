"""Bounded loopback TCP workloads for the TCP tools' tests, run as gated workloads
(tests/workload.py) so a tool can attach with -p PID first. Each reports what it did as one
JSON word after "done"; the tests compare the tools' figures with it."""
import json
import socket

from toolrun import trace_gated

# n sessions, one after the other: the client sends `size` bytes and half-closes, the server
# reads to EOF, replies `reply` bytes and closes. Both ends live in the workload process.
SESSIONS = """
import json, socket, sys, threading
n, size, reply, port = map(int, sys.argv[1:5])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(n); port = srv.getsockname()[1]
received = []
def serve():
    for _ in range(n):
        c, _ = srv.accept(); got = 0
        while True:
            d = c.recv(1 << 16)
            if not d: break
            got += len(d)
        received.append(got)
        c.sendall(b"r" * reply); c.close()
t = threading.Thread(target=serve); t.start()
clients, replies = [], []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port)); clients.append(c.getsockname()[1])
    c.sendall(b"s" * size); c.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        d = c.recv(1 << 16)
        if not d: break
        got += len(d)
    replies.append(got); c.close()
t.join(); srv.close()
result = json.dumps({"port": port, "clients": clients, "received": received,
                     "replies": replies}, separators=(",", ":"))
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

# a listener with backlog b that never accepts, and n non-blocking connects to it
BACKLOG = """
import json, socket, sys, time
b, n = map(int, sys.argv[1:3])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(b)
port = srv.getsockname()[1]
cs = []
for _ in range(n):
    c = socket.socket(); c.setblocking(False)
    c.connect_ex(("127.0.0.1", port)); cs.append(c)
time.sleep(0.3)  # loopback handshakes complete in microseconds
result = json.dumps({"port": port}, separators=(",", ":"))
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
