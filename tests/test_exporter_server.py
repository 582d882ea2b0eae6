"""The exporter's HTTP server without BPF: a fake collector behind the real server, driven by
http.client and raw sockets. What Prometheus and curl do (keep-alive, HEAD, gzip) and what a
bad or stalled client does must neither break nor hold up the next scrape."""
import gzip
import http.client
import re
import socket
import threading
import urllib.request

import pytest

from bpfsight.exporter import metrics, server
from bpfsight.exporter.server import MetricsServer, Scraper


class _Self:
    scrape_s, samples, errors, durations = 0.0, 0, {}, {}

    def collect(self):
        return []


class _Counting:
    """A collector whose samples say how many times it was collected."""
    name = "fake"

    def __init__(self):
        self.collected = 0

    def families(self):
        self.collected += 1
        fam = metrics.counter("bpfsight_fake_total", "Collections.", ["n"])
        for i in range(2000):
            fam.add([str(i)], self.collected)
        return [fam]


@pytest.fixture
def served():
    collector = _Counting()
    srv = MetricsServer(("127.0.0.1", 0), Scraper([collector], _Self(), cache_s=0)).start()
    port = int(srv.url.rsplit(":", 1)[1])
    yield srv, port, collector
    srv.close()


def _raw(port, data, until_closed=True):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        got = b""
        while until_closed:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_keep_alive_head_gzip_and_paths(served):
    srv, port, collector = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    bodies = []
    for _ in range(3):  # one connection, three scrapes, each a fresh collection (cache 0)
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
        bodies.append(gzip.decompress(resp.read()).decode())
    assert [b.count(f"bpfsight_fake_total{{n=\"1999\"}} {n}.0\n") for n, b in
            zip((1, 2, 3), bodies)] == [1, 1, 1]
    conn.request("HEAD", "/metrics")
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.headers["Content-Length"]) > 0
    assert resp.read() == b""
    for path, status in (("/healthz", 200), ("/", 200), ("/nothing", 404),
                         ("/metrics?x=1", 200)):
        conn.request("GET", path)
        resp = conn.getresponse()
        assert (resp.status, bool(resp.read())) == (status, True), path
    conn.close()
    assert collector.collected == 5  # three GETs, the HEAD, the query string


def test_pipelined_requests_are_answered_in_order(served):
    _, port, _ = served
    got = _raw(port, b"GET /healthz HTTP/1.1\r\n\r\n" * 3 +
               b"GET /nothing HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert re.findall(rb"HTTP/1.1 (\d+)", got) == [b"200"] * 3 + [b"404", b"200"]


@pytest.mark.parametrize("request_bytes,status", [
    (b"nonsense\r\n\r\n", b"400"),
    (b"POST /metrics HTTP/1.1\r\n\r\n", b"405"),
    (b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 20000, b"431"),
])
def test_bad_requests_get_one_answer_and_a_close(served, request_bytes, status):
    _, port, _ = served
    got = _raw(port, request_bytes)
    assert got.split(b" ")[1] == status and b"Connection: close" in got


def test_a_stalled_client_holds_up_nobody_and_is_dropped(served, monkeypatch):
    srv, port, _ = served
    monkeypatch.setattr(server, "REQUEST_TIMEOUT_S", 1.0)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert urllib.request.urlopen(srv.url + "/healthz", timeout=5).read() == b"ok\n"
        assert stalled.recv(100) == b""  # dropped after the timeout (the select wakes each 1 s)


def test_connections_past_the_cap_get_503(served):
    srv, port, _ = served
    srv.max_connections = 4
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    try:
        for s in held:  # each one accepted and kept alive
            s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            assert s.recv(1000).startswith(b"HTTP/1.1 200")
        assert _raw(port, b"GET /healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()


def test_close_ends_the_thread_and_later_scrapes_are_refused(served):
    srv, port, _ = served
    before = threading.active_count()
    srv.close()
    assert threading.active_count() == before - 1
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert srv.scraper.render("", False) is None


def test_the_daemon_imports_neither_prometheus_client_nor_http_server():
    """prometheus_client (with http.server and email under it) was ~14 MB of every node's
    exporter and ~37 ms of its start: the daemon's modules must not bring it back."""
    import subprocess
    import sys
    code = ("import sys, bpfsight.cli, bpfsight.exporter.command, bpfsight.exporter.collectors,"
            " bpfsight.exporter.server, bpfsight.exporter.selfmetrics, bpfsight.exporter.program;"
            " print(sorted(m for m in sys.modules"
            " if m.split('.')[0] in ('prometheus_client', 'http', 'email')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", out
