"""servicemap cross-checked against what the clients and servers counted themselves: connects,
bytes each way, connect timings, a refused connect, a connection open before the start, and
the server process named on a local client's edge; its --dot and --html outputs."""
import json
import os
import re
import subprocess
import sys

import pytest

from browser import dump_dom
from helpers import Running, assert_released, bpf_objects_of
from tcpload import ClosedPort, free_port
from toolrun import assert_usage_error, records
from workload import Gated

pytestmark = pytest.mark.bpf

# One process, gated (tests/workload.py): before "ready" it opens a connection between two of
# its own sockets (open before the tool starts); after "go" it makes n connects to its server,
# each sending `size` bytes and reading `reply` back, timing connect() with CLOCK_MONOTONIC;
# then moves k bytes one way and r back on the old connection, and makes one connect to a
# closed loopback port. The old connection stays open until the test closes stdin.
WORK = r"""
import json, socket, sys, threading, time
n, size, reply, closed_port, k, r = map(int, sys.argv[1:7])
now = time.monotonic_ns
def listener():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64); return s, s.getsockname()[1]
srv, port = listener()
old_srv, old_port = listener()
old_client = socket.create_connection(("127.0.0.1", old_port)); old_server, _ = old_srv.accept()
def read(s, want=None):
    got = 0
    while want is None or got < want:
        d = s.recv(1 << 16)
        if not d: break
        got += len(d)
    return got
def serve():
    for _ in range(n):
        c, _ = srv.accept(); read(c); c.sendall(b"r" * reply); c.close()
print("ready", flush=True)
sys.stdin.readline()
t = threading.Thread(target=serve); t.start()
connects, replies = [], []
for _ in range(n):
    c = socket.socket(); t0 = now(); c.connect(("127.0.0.1", port)); connects.append(now() - t0)
    c.sendall(b"s" * size); c.shutdown(socket.SHUT_WR); replies.append(read(c)); c.close()
t.join()
old_client.sendall(b"o" * k); assert read(old_server, k) == k
old_server.sendall(b"p" * r); assert read(old_client, r) == r
refused = 0
c = socket.socket()
try:
    c.connect(("127.0.0.1", closed_port))
except ConnectionRefusedError:
    refused += 1
c.close()
result = json.dumps({"port": port, "old_port": old_port, "connects_ns": connects,
                     "replies": replies, "refused": refused}, separators=(",", ":"))
print("done", result, flush=True)
sys.stdin.read()
"""

N, SIZE, REPLY, K, R = 5, 120_000, 30_000, 7_000, 3_000


def data(got, sent, conns):
    """tcp_sock's bytes_acked/bytes_received follow snd_una/rcv_nxt, which also step over the
    SYN and the FIN (one sequence number each): a closed connection's figure is its data plus
    0..2 (see test_tcplife); one still open and past its handshake, data exactly."""
    return sent <= got <= sent + 2 * conns


def the_map(out):
    maps = [r for r in records(out) if r.get("tool") == "servicemap"]
    assert len(maps) == 1, out
    return maps[0]


def test_edges_against_the_workloads_own_counts():
    with ClosedPort() as closed_port, Gated([sys.executable, "-c", WORK, str(N), str(SIZE),
                                            str(REPLY), str(closed_port), str(K), str(R)]) as w:
        tool = Running("servicemap", "-p", w.pid, "--json").wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        try:
            work = json.loads(w.run()[0])
        finally:
            rc, out, err = tool.stop()
        pid = w.pid
    assert rc == 0 and "Traceback" not in err, err
    assert_released(held)
    smap = the_map(out)
    edges = {e["server"]: e for e in smap["edges"]}
    # -p: only the workload's own edges (it is client and server of each), nothing lost
    assert set(edges) == {f"127.0.0.1:{work['port']}", f"127.0.0.1:{work['old_port']}",
                          f"127.0.0.1:{closed_port}"}, edges
    assert smap["lost"] == 0
    new, old, failed = (edges[f"127.0.0.1:{p}"] for p in (work["port"], work["old_port"],
                                                          closed_port))
    # a connection between two local sockets is one edge naming both ends' process
    for e in (new, old):
        assert e["client_pid"] == e["server_pid"] == pid, e
        assert e["from"] == e["to"] == f"pid:{pid}" and e["client_comm"].startswith("python")
    assert work["replies"] == [REPLY] * N
    assert new["opened"] == N and new["existing"] == 0 and new["failed"] == 0, new
    assert data(new["tx_bytes"], N * SIZE, N) and data(new["rx_bytes"], N * REPLY, N), new
    # SYN_SENT comes after the client's first clock reading and ESTABLISHED before connect()
    # returns: each latency is inside the client's own timing, on any machine (the JSON
    # rounds to 1 ns)
    timed = work["connects_ns"]
    assert 0 < new["connect_max_us"] * 1e3 <= max(timed) + 1, (new, timed)
    assert 0 < new["connect_avg_us"] * 1e3 * N <= sum(timed) + N, (new, timed)
    print(f"connect avg {new['connect_avg_us']} us (client: {sum(timed) / N / 1e3:.1f} us), "
          f"max {new['connect_max_us']} us (client: {max(timed) / 1e3:.1f} us)")
    # open before the start: flagged existing, its bytes counted from the start only, exactly
    assert old["existing"] == 1 and old["opened"] == 0, old
    assert old["tx_bytes"] == K and old["rx_bytes"] == R, old
    # the refused connect: failed and refused, with the reset that refused it
    assert work["refused"] == 1
    assert failed["failed"] == failed["refused"] == 1 and failed["opened"] == 0, failed
    assert failed["resets"] == 1 and failed["server_pid"] == 0, failed
    kinds = {n["id"]: n for n in smap["nodes"]}
    assert kinds[f"pid:{pid}"]["kind"] == "process"
    assert kinds[f"127.0.0.1:{closed_port}"]["kind"] == "service"


CURL_FORMAT = "%{size_request} %{size_header} %{size_download} %{time_connect}"


@pytest.fixture
def http_server(tmp_path):
    """`python3 -m http.server` on a loopback port, serving a 50 kB file."""
    (tmp_path / "f.bin").write_bytes(os.urandom(50_000))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1",
                             "--directory", str(tmp_path), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert "Serving HTTP" in proc.stdout.readline()
    yield proc, port
    proc.kill()
    proc.wait()


def test_curl_to_http_server_names_both_processes(http_server, tmp_path):
    """-p SERVER: each curl's connection is an edge from that curl to the server process,
    bytes as curl counted them; --dot and --html draw the same edges."""
    server, port = http_server
    dot, page = tmp_path / "map.dot", tmp_path / "map.html"
    tool = Running("servicemap", "-p", server.pid, "--json", "--dot", dot, "--html", page)
    tool.wait_attached()
    curls = {}
    for _ in range(3):
        c = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", CURL_FORMAT,
                              f"http://127.0.0.1:{port}/f.bin"], stdout=subprocess.PIPE,
                             text=True)
        out, _ = c.communicate(timeout=30)
        assert c.returncode == 0
        curls[c.pid] = out.split()
    rc, out, err = tool.stop()
    assert rc == 0 and "Traceback" not in err, err
    smap = the_map(out)
    edges = {e["client_pid"]: e for e in smap["edges"]}
    assert set(edges) == set(curls), smap["edges"]
    for pid, (request, header, body, connect_s) in curls.items():
        e = edges[pid]
        assert e["client_comm"] == "curl" and e["server_pid"] == server.pid, e
        assert e["server"] == f"127.0.0.1:{port}" and e["to"] == f"pid:{server.pid}", e
        assert e["opened"] == 1 and e["failed"] == 0, e
        # curl's own byte counts: the request it sent, the headers and body it received
        assert data(e["tx_bytes"], int(request), 1), (e, request)
        assert data(e["rx_bytes"], int(header) + int(body), 1), (e, header, body)
        # curl's time_connect runs from its start to connect()'s end (microsecond resolution)
        assert 0 < e["connect_max_us"] <= float(connect_s) * 1e6 + 1, (e, connect_s)

    text = dot.read_text()  # Graphviz's grammar, checked by structure (no `dot` binary needed)
    assert text.startswith("digraph servicemap {") and text.rstrip().endswith("}")
    arrows = re.findall(r'^  "pid:(\d+)" -> "pid:(\d+)" \[label="([^"]*)"', text, re.M)
    assert sorted(int(a) for a, b, _ in arrows) == sorted(curls), text
    assert all(int(b) == server.pid and f"127.0.0.1:{port}" in lab for _, b, lab in arrows)
    assert text.count("{") == text.count("}") and text.count('"') % 2 == 0

    dom = dump_dom(page)  # rendered by headless chromium, its script run
    assert re.search(r'<body[^>]*data-drawn-edges="3"', dom), dom[:2000]
    drawn = re.findall(r'class="sm-edge" data-from="pid:(\d+)" data-to="pid:(\d+)"', dom)
    assert sorted(int(a) for a, _ in drawn) == sorted(curls)
    assert "http" not in re.sub(r'http://www\.w3\.org/2000/svg', "", page.read_text())  # no fetches


@pytest.mark.parametrize("args", [["-p", "0"], ["0"], ["abc"], ["-n", "0"],
                                  ["--html", "/nonexistent/x.html"], ["--dot", "/proc/x.dot"],
                                  ["--html", "x.txt"], ["-p", "999999999"]])
def test_bad_arguments(args):
    assert_usage_error("servicemap", *args)
