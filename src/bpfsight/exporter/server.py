"""The HTTP side: /metrics in Prometheus text format, or OpenMetrics when the Accept header
asks for it (Prometheus does), gzip when accepted; /healthz.

One thread serves every connection from an event loop (selectors) and collects in it: a scrape
is short, collections are serialised anyway (crediting kernel changes to series is stateful),
and a collection is reused for `cache_s` seconds, so fifty scrapers at once cost one map read
and one render per format. No thread per connection (starting one, and http.server's header
parsing, cost about half of an idle node's scrape, issue 19), no thread pool, and one malloc
arena for the large buffers: collecting in whichever connection thread asked left a high-water
mark in each of glibc's per-thread arenas (RSS grew ~60 MB under 50 scrapers). Connections
beyond `max_connections` get 503 at once; a client that stalls mid-request is dropped after
`REQUEST_TIMEOUT_S`, an idle kept-alive one after `IDLE_TIMEOUT_S`."""
import gzip
import selectors
import socket
import sys
import threading
import time

from ..errors import UsageError
from .render import Encoder, choose_format

REQUEST_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 120.0
LINGER_S = 2.0
MAX_REQUEST_BYTES = 16384
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}
_TEXT = "text/plain; charset=utf-8"
_INDEX = (b"<html><body><h1>bpfsight exporter</h1>"
          b"<a href='/metrics'>/metrics</a></body></html>\n")


class Scraper:
    """Collects the collectors, the self-metrics and the process metrics."""

    def __init__(self, collectors, selfmetrics, extra=(), cache_s=1.0, log=sys.stderr):
        self.collectors = collectors
        self.selfmetrics = selfmetrics
        self.extra = list(extra)
        self.cache_s = cache_s
        self.log = log
        self._families = None
        self._taken = 0.0
        self._rendered = {}
        self._encoder = Encoder()
        self._closed = False
        self._warned = set()

    def render(self, accept, gzip_ok):
        """(body, content type) of a scrape; None once closed."""
        if self._closed:
            return None
        t0 = time.perf_counter()
        fresh = self._families is None or time.monotonic() - self._taken >= self.cache_s
        if fresh:
            self._families = self._collect()
            self._taken = time.monotonic()
            self._rendered.clear()
        openmetrics, ctype = choose_format(accept)
        body = self._rendered.get((openmetrics, gzip_ok))
        if body is None:
            body = self._encoder.encode(self._families, openmetrics)
            if gzip_ok:  # the fastest level: 0.25 ms instead of 0.6, ~15% more bytes
                body = gzip.compress(body, compresslevel=1)
            self._rendered[(openmetrics, gzip_ok)] = body
        if fresh:
            self.selfmetrics.scrape_s = time.perf_counter() - t0
        return body, ctype

    def _collect(self):
        families = []
        for c in self.collectors:
            t0 = time.perf_counter()
            try:
                families.extend(c.families())
            except Exception as exc:  # one collector failing must not fail the scrape
                self.selfmetrics.errors[c.name] += 1
                if c.name not in self._warned:
                    self._warned.add(c.name)
                    self.log.write(f"bpfsight exporter: collector {c.name} failed: "
                                   f"{type(exc).__name__}: {exc}\n")
                    self.log.flush()
            self.selfmetrics.durations[c.name] = time.perf_counter() - t0
        for source in [self.selfmetrics] + self.extra:
            families.extend(source.collect())
        self.selfmetrics.samples = sum(f.sample_count() for f in families)
        return families

    def close(self):
        """Later scrapes get 503: the maps are about to close."""
        self._closed = True


class _Connection:
    __slots__ = ("sock", "inbuf", "outbuf", "deadline", "keep", "events", "lingering")

    def __init__(self, sock):
        self.sock = sock
        self.inbuf = b""
        self.outbuf = memoryview(b"")
        self.deadline = time.monotonic() + IDLE_TIMEOUT_S
        self.keep = True
        self.events = selectors.EVENT_READ
        self.lingering = False  # answered and shut for writing: reading the rest to its end


class MetricsServer:
    def __init__(self, address, scraper, max_connections=256):
        host, port = address
        self.scraper = scraper
        self.max_connections = max_connections
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(128)  # fifty scrapers connecting at once: not a full backlog
        except OSError as exc:
            self._listener.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._connections = {}
        self._stopping = False
        self._thread = None

    @property
    def url(self):
        host, port = self._listener.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def start(self):
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._serve, name="bpfsight-http", daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stop serving (a scrape in progress finishes first), then refuse later scrapes."""
        if self._stopping:
            return
        self._stopping = True
        if self._thread is not None:
            self._wake_w.send(b"x")
            self._thread.join()
        for conn in list(self._connections.values()):
            conn.sock.close()
        self._connections.clear()
        self._selector.close()
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()
        self.scraper.close()

    def _serve(self):
        while not self._stopping:
            for key, events in self._selector.select(timeout=1.0):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj is not self._wake_r:
                    conn = key.data
                    try:
                        if events & selectors.EVENT_READ:
                            self._read(conn)
                        else:
                            self._pump(conn)
                    except OSError:
                        self._drop(conn)
            now = time.monotonic()
            for conn in [c for c in self._connections.values() if c.deadline < now]:
                self._drop(conn)

    def _accept(self):
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, a connection reset in the backlog
                return
            if len(self._connections) >= 2 * self.max_connections:
                sock.close()  # a flood: not even an answer
                continue
            sock.setblocking(False)
            conn = _Connection(sock)
            self._connections[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)
            if len(self._connections) > self.max_connections:  # answered, then closed
                _answer_and_close(conn, 503, b"too many connections\n")
                try:
                    self._pump(conn)
                except OSError:
                    self._drop(conn)

    def _read(self, conn):
        data = conn.sock.recv(65536)
        if not data:
            self._drop(conn)
            return
        if conn.lingering:
            return
        conn.inbuf += data
        self._pump(conn)

    def _pump(self, conn):
        """Write what is pending, then answer each whole request already read (pipelining),
        until the socket would block or a request is incomplete."""
        while True:
            while conn.outbuf:
                try:
                    sent = conn.sock.send(conn.outbuf)
                except (BlockingIOError, InterruptedError):
                    self._want(conn, selectors.EVENT_WRITE)
                    conn.deadline = time.monotonic() + REQUEST_TIMEOUT_S
                    return
                conn.outbuf = conn.outbuf[sent:]
            if not conn.keep:
                # Closing with unread bytes would reset the connection, and a reset can discard
                # the answer before the client reads it (a 431 to a request still arriving):
                # shut writing, then read to the client's end, as nginx's lingering close does.
                conn.sock.shutdown(socket.SHUT_WR)
                conn.lingering = True
                self._want(conn, selectors.EVENT_READ)
                conn.deadline = time.monotonic() + LINGER_S
                return
            end = conn.inbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(conn.inbuf) > MAX_REQUEST_BYTES:
                    _answer_and_close(conn, 431, b"request too large\n")
                    continue
                self._want(conn, selectors.EVENT_READ)
                conn.deadline = time.monotonic() + (
                    REQUEST_TIMEOUT_S if conn.inbuf else IDLE_TIMEOUT_S)
                return
            head, conn.inbuf = conn.inbuf[:end], conn.inbuf[end + 4:]
            conn.keep, response = self._handle(head)
            conn.outbuf = memoryview(response)

    def _want(self, conn, events):
        if conn.events != events:
            conn.events = events
            self._selector.modify(conn.sock, events, conn)

    def _drop(self, conn):
        if self._connections.pop(conn.sock.fileno(), None) is not None:
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _handle(self, head):
        """(keep the connection?, response bytes) for one request's head."""
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        except ValueError:
            return False, _response(400, b"bad request\n", _TEXT, keep=False)
        connection = headers.get("connection", "").lower()
        keep = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
        if method not in ("GET", "HEAD"):
            return False, _response(405, b"method not allowed\n", _TEXT, keep=False)
        code, body, ctype, encoding = self._route(target.split("?", 1)[0], headers)
        response = _response(code, body, ctype, keep, encoding)
        if method == "HEAD":
            response = response[:len(response) - len(body)]
        return keep, response

    def _route(self, path, headers):
        if path == "/metrics":
            gzip_ok = "gzip" in headers.get("accept-encoding", "")
            result = self.scraper.render(headers.get("accept", ""), gzip_ok)
            if result is None:
                return 503, b"shutting down\n", _TEXT, None
            return 200, result[0], result[1], "gzip" if gzip_ok else None
        if path == "/healthz":
            return 200, b"ok\n", _TEXT, None
        if path == "/":
            return 200, _INDEX, "text/html; charset=utf-8", None
        return 404, b"not found\n", _TEXT, None


def _answer_and_close(conn, code, text):
    conn.outbuf, conn.keep = memoryview(_response(code, text, _TEXT, keep=False)), False


def _response(code, body, ctype, keep, encoding=None):
    head = [f"HTTP/1.1 {code} {_REASONS[code]}", "Server: bpfsight-exporter",
            f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    if encoding:
        head.append(f"Content-Encoding: {encoding}")
    if not keep:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
