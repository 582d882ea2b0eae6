"""The HTTP side: /metrics in Prometheus text format, or OpenMetrics when the Accept header
asks for it (Prometheus does), gzip when accepted; /healthz.

Scrapes are collected and rendered by one worker thread, one at a time (crediting kernel
changes to series is stateful); a collection is reused for `cache_s` seconds, so fifty
scrapers at once cost one map read, and the rendered bytes are kept per format so each costs
one render. One thread also means one malloc arena for the large buffers: collecting in
whichever connection thread asked left a high-water mark in each of glibc's per-thread arenas
(RSS grew ~60 MB under 50 scrapers). Connection threads only wait and write; connections
beyond `max_inflight` get 503 at once, so a scrape storm cannot grow threads unbounded."""
import gzip
import socket
import socketserver
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import choose_encoder

from ..errors import UsageError
from .render import Encoder, encode


class _Snapshot:
    """Metric families already collected, in the shape prometheus_client's encoders read."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


class Scraper:
    """Collects the collectors, the self-metrics and the process metrics, serialised."""

    def __init__(self, collectors, selfmetrics, extra=(), cache_s=1.0, log=sys.stderr):
        self.collectors = collectors
        self.selfmetrics = selfmetrics
        self.extra = list(extra)
        self.cache_s = cache_s
        self.log = log
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpfsight-scrape")
        self._snapshot = None
        self._taken = 0.0
        self._rendered = {}
        self._encoder = Encoder()
        self._closed = False
        self._warned = set()

    def render(self, accept, gzip_ok):
        """(body, content type) of a scrape; None once closed."""
        try:
            return self._worker.submit(self._render, accept, gzip_ok).result()
        except RuntimeError:  # the worker was shut down: the maps are closing
            return None

    def _render(self, accept, gzip_ok):
        if self._closed:
            return None
        t0 = time.perf_counter()
        fresh = self._snapshot is None or time.monotonic() - self._taken >= self.cache_s
        if fresh:
            self._snapshot = _Snapshot(self._collect())
            self._taken = time.monotonic()
            self._rendered.clear()
        encoder, ctype = choose_encoder(accept)
        body = self._rendered.get((ctype, gzip_ok))
        if body is None:
            body = encode(self._encoder, self._snapshot.families, ctype,
                          lambda: encoder(self._snapshot))
            if gzip_ok:
                body = gzip.compress(body, compresslevel=6)
            self._rendered[(ctype, gzip_ok)] = body
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
        self.selfmetrics.samples = sum(len(f.samples) for f in families)
        return families

    def close(self):
        """Let the scrapes already queued finish; later ones get 503 (the maps are about to
        close)."""
        self._closed = True
        self._worker.shutdown(wait=True)


class _Handler(BaseHTTPRequestHandler):
    server_version = "bpfsight-exporter"
    timeout = 10  # a client that stalls mid-request does not hold its thread for long

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._metrics()
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, b"<html><body><h1>bpfsight exporter</h1>"
                            b"<a href='/metrics'>/metrics</a></body></html>\n",
                       "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _metrics(self):
        if not self.server.slots.acquire(blocking=False):
            self._send(503, b"too many concurrent scrapes\n", "text/plain; charset=utf-8")
            return
        try:
            gzip_ok = "gzip" in self.headers.get("Accept-Encoding", "")
            result = self.server.scraper.render(self.headers.get("Accept", ""), gzip_ok)
        finally:
            self.server.slots.release()
        if result is None:
            self._send(503, b"shutting down\n", "text/plain; charset=utf-8")
            return
        body, ctype = result
        self._send(200, body, ctype, "gzip" if gzip_ok else None)

    def _send(self, code, body, ctype, encoding=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # a line per scrape would only fill the journal


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # fifty scrapers connecting at once must not meet a full backlog

    def __init__(self, address, scraper, max_inflight=64):
        host, port = address
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.scraper = scraper
        self.slots = threading.BoundedSemaphore(max_inflight)
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._thread = None

    def server_bind(self):
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can stall
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def url(self):
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, name="bpfsight-http",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stop accepting, let a scrape in progress finish, then refuse the rest."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()
        self.scraper.close()
