"""httplat: HTTP/1.x request latency of servers and clients, from the first bytes of what their
sockets read and write (and what OpenSSL encrypts and decrypts), with no change to them."""
import re
import sys
import time
from collections import deque

from ..errors import UsageError
from ..report.grouped import comm_of
from ..report.output import clock_hms
from ..tool import (FOREVER, TIMESTAMP, Option, StopSignal, Tool, event_ring, flag, output_for,
                    positive_int, report_drops, stream_loop)

METHODS = rb"GET|POST|PUT|HEAD|DELETE|PATCH|OPTIONS|CONNECT|TRACE"
REQUEST_LINE = re.compile(rb"(" + METHODS + rb") (\S+) HTTP/1\.[01]\r?\n")
REQUEST_CUT = re.compile(rb"(" + METHODS + rb") (\S+)$")  # a line longer than the capture
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?:[ \t][^\r\n]*)?\r?\n")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
HEADERS_END = b"\r\n\r\n"

DIR_IN, DIR_OUT, DIR_CLOSED = 0, 1, 2  # bpf/httplat.bpf.c enum direction
ROLE_OF = {("request", DIR_IN): "server", ("request", DIR_OUT): "client",
           ("response", DIR_OUT): "server", ("response", DIR_IN): "client"}

# A path segment that names one thing among many: a number, a UUID, a long hex string, or a
# long token with digits in it. Folded so that routes, not ids, are counted.
ID_SEGMENT = re.compile(r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                        r"[0-9a-fA-F]{12}|[0-9a-fA-F]{12,}|(?=[^/]*\d)[\w\-.~%]{20,}")
OTHER_ROUTE = "(other)"

STREAM_ROW = "%-8s %-7s %-12.12s %-6s %-4s %-7s %-36s %6s %10s"
TABLE_ROW = "%-12.12s %-6s %-7s %-36s %6s %8s %9s %9s %9s %9s"


def route_of(path):
    """The route of a request target: no query or fragment, no scheme and host (a proxy's
    absolute form), id-like segments folded to ':id'."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return "/".join(":id" if ID_SEGMENT.fullmatch(s) else s for s in path.split("/")) or "/"


def start_lines(data, line):
    """The start lines (matches of `line`) of the messages that begin in data: one, or more
    when a pipelined request or response follows the first within the captured bytes (found
    by skipping each message's headers and Content-Length body)."""
    found, pos = [], 0
    while pos < len(data):
        m = line.match(data, pos)
        if not m:
            break
        found.append(m)
        end = data.find(HEADERS_END, m.end() - 2)
        if end < 0:
            break
        length = CONTENT_LENGTH.search(data, m.end() - 2, end + 2)
        pos = end + len(HEADERS_END) + (int(length.group(1)) if length else 0)
    return found


class Pairing:
    """Requests paired with their responses per connection and side, in order (keep-alive and
    pipelining): a server's request is read and its response written, a client's the other
    way round. What cannot be parsed or paired is counted, never guessed."""

    def __init__(self, max_routes):
        self.waiting = {}   # (pid, conn, tls, role) -> deque of (ts_ns, method, path)
        self.routes = set()
        self.max_routes = max_routes
        self.capture = 0
        self.route_by_path = {}
        self.names = {}  # comm bytes -> text
        self.counts = {"unparsed": 0, "unmatched": 0, "unanswered": 0, "informational": 0}

    def route(self, path):
        route = self.route_by_path.get(path)
        if route is None:
            if len(self.route_by_path) > 4 * self.max_routes:  # ids make paths unbounded
                self.route_by_path.clear()
            route = self.route_by_path[path] = self._new_route(route_of(path))
        return route

    def _new_route(self, route):
        if route in self.routes:
            return route
        if len(self.routes) >= self.max_routes:
            return OTHER_ROUTE
        self.routes.add(route)
        return route

    def feed_batch(self, batch):
        """Requests completed by a batch of records (numpy, the ring's type), as dicts. The
        columns become lists first: a numpy field read per record costs more than the parse."""
        done = []
        self.capture = batch.dtype["data"].itemsize  # what the kernel copies of each buffer
        captured = batch["captured"].tolist()
        columns = zip(batch["pid"].tolist(), batch["conn"].tolist(), batch["tls"].tolist(),
                      batch["dir"].tolist(), batch["ts_ns"].tolist(), batch["data"].tolist(),
                      captured, batch["comm"].tolist())
        for pid, conn, tls, direction, ts, data, n, comm in columns:
            done += self.feed((pid, conn, tls), direction, ts, data[:n], comm)
        return done

    def feed(self, key, direction, ts, data, comm):
        """Requests completed by one record: key (pid, conn, tls), its direction, time, the
        captured bytes and the process name (bytes)."""
        if direction == DIR_CLOSED:
            for role in ("server", "client"):
                self.counts["unanswered"] += len(self.waiting.pop(key + (role,), ()))
            return ()
        if data.startswith(b"HTTP/"):
            return self._responses(key + (ROLE_OF["response", direction],), data, ts, comm)
        requests = start_lines(data, REQUEST_LINE) or [
            m for m in [REQUEST_CUT.match(data)] if m and len(data) == self.capture]
        if not requests:
            self.counts["unparsed"] += 1
            return ()
        queue = self.waiting.get(key + (ROLE_OF["request", direction],))
        if queue is None:
            queue = self.waiting[key + (ROLE_OF["request", direction],)] = deque()
        for m in requests:
            queue.append((ts, m.group(1).decode(), m.group(2).decode(errors="replace")))
        return ()

    def _responses(self, key, data, ts, comm):
        lines = start_lines(data, STATUS_LINE)
        if not lines:
            self.counts["unparsed"] += 1
            return ()
        done = []
        queue = self.waiting.get(key)
        for m in lines:
            status = int(m.group(1))
            if 100 <= status < 200 and status != 101:  # 100 Continue: the answer is to come
                self.counts["informational"] += 1
                continue
            if not queue:
                self.counts["unmatched"] += 1
                continue
            start, method, path = queue.popleft()
            name = self.names.get(comm) or self.names.setdefault(comm, comm_of(comm))
            done.append({"ts_ns": ts, "pid": key[0], "comm": name,
                         "role": key[3], "tls": bool(key[2]), "method": method, "path": path,
                         "route": self.route(path), "status": status,
                         "lat_ms": (ts - start) / 1e6})
        if queue is not None and not queue:
            del self.waiting[key]
        return done

    def in_flight(self):
        return sum(map(len, self.waiting.values()))


def nearest_rank(sorted_values, p):
    return sorted_values[max(0, -(-len(sorted_values) * p // 100) - 1)]


def summarise(requests):
    """Rows {comm, role, method, route, status, count, p50/p90/p99/max_ms, histogram} of the
    requests completed in an interval, most requests first. Percentiles are exact (nearest
    rank); the histogram is log2 of microseconds, as the latency tools print it."""
    from ..report.histogram import HIST_SLOTS, Log2Histogram
    groups = {}
    for r in requests:
        key = (r["comm"], r["role"], r["method"], r["route"], r["status"])
        groups.setdefault(key, []).append(r["lat_ms"])
    rows = []
    for (comm, role, method, route, status), lat in groups.items():
        lat.sort()
        slots = [0] * HIST_SLOTS
        for ms in lat:
            slots[min(max(int(ms * 1000), 1).bit_length() - 1, HIST_SLOTS - 1)] += 1
        rows.append({"comm": comm, "role": role, "method": method, "route": route,
                     "status": status, "count": len(lat),
                     "p50_ms": nearest_rank(lat, 50), "p90_ms": nearest_rank(lat, 90),
                     "p99_ms": nearest_rank(lat, 99), "max_ms": lat[-1],
                     "histogram": Log2Histogram(slots, round(sum(lat) * 1000), "usecs")})
    return sorted(rows, key=lambda r: (-r["count"], r["comm"], r["route"], r["status"]))


class Httplat(Tool):
    name = "httplat"
    summary = "HTTP/1.x request latency per method, route and status, without touching the program"
    description = (
        "HTTP/1.x requests of servers and clients, paired with their responses per connection\n"
        "(keep-alive and pipelining included), with no change to the program: the first bytes\n"
        "of what sockets read and write (read/write, recv/send, readv/writev, recvmsg/sendmsg)\n"
        "and, for HTTPS, what OpenSSL's SSL_read/SSL_write (and _ex) return and take, through\n"
        "uprobes on the libssl the target maps (or the system's).\n\n"
        "A server's latency runs from the read that brought the request line to the first\n"
        "write of its status line (time to first byte, as the server sees it); a client's\n"
        "from the write of its request to the read that brought the status line. Routes fold\n"
        "ids (numbers, UUIDs, long hex and tokens) to ':id'; past --routes distinct routes the\n"
        "rest count as '(other)'. Not seen: HTTP/2 and HTTP/3, TLS libraries other than\n"
        "OpenSSL (statically linked ones included), io_uring I/O. A message whose start line\n"
        "does not parse, a response without a request, and requests never answered before\n"
        "their connection closed are counted and shown, not guessed.")
    target = intervals = True
    options = (
        flag("-s", "--stream", help="print one line per request as it completes"),
        Option("-n", "--top", type=positive_int("top"), default=20,
               help="print at most this many rows per interval (default 20)"),
        Option("--routes", type=positive_int("routes"), default=100,
               help="distinct routes kept before the rest count as (other) (default 100)"),
        flag("-H", "--histogram", help="print each row's latency as a log2 histogram"),
        Option("--libssl", metavar="PATH",
               help="the OpenSSL library to trace for HTTPS (default: the target's, or the "
                    "system's libssl)"),
        flag("--no-tls", help="do not trace HTTPS (no uprobes on libssl)"),
        TIMESTAMP)

    def configure(self, spec, opts):
        from ..binaries import resolve_binary
        self._libssl = None
        if not opts.no_tls:
            try:
                self._libssl = resolve_binary(opts.libssl or "ssl", opts.pid)
            except UsageError:
                if opts.libssl:
                    raise
        if not self._libssl:
            for name in spec.programs:
                if "_ssl_" in name:
                    spec.programs[name].autoload = False
        # 4 MiB: ~9,500 records, a tenth of a second of a server at 50k requests/s
        spec.maps["events"].max_entries = 4 << 20
        spec.set_global("wakeup_bytes", 64 * 1024)  # woken per 64 KiB or the 0.1 s poll

    def attach(self, obj, opts):
        obj.attach_all()
        if not self._libssl:
            return
        pid = opts.pid or -1
        for fn, entry in (("SSL_read", "httplat_ssl_read"), ("SSL_read_ex", "httplat_ssl_read_ex")):
            obj.attach_uprobe(entry, self._libssl, fn, pid=pid)
            obj.attach_uprobe("httplat_ssl_read_ret", self._libssl, fn, pid=pid, retprobe=True)
        obj.attach_uprobe("httplat_ssl_write", self._libssl, "SSL_write", pid=pid)
        obj.attach_uprobe("httplat_ssl_write_ex", self._libssl, "SSL_write_ex", pid=pid)

    def banner_for(self, opts):
        tls = f", HTTPS through {self._libssl}" if self._libssl else ""
        return f"Tracing HTTP requests{tls}... Hit Ctrl-C to end."

    def run(self, args):
        out = output_for(args)
        spec = self.open(args)
        pairing = Pairing(args.routes)
        with StopSignal() as stop, spec.load() as obj:
            self.attach(obj, args)
            out.banner(self.banner_for(args))
            if args.stream:
                out.text(STREAM_ROW % ("TIME", "PID", "COMM", "ROLE", "TLS", "METHOD", "PATH",
                                       "STATUS", "LATms"))
            dtype = obj.record_dtype()
            with event_ring(obj) as ring:
                done = []

                def handle(r):
                    finished = pairing.feed_batch(r.read_array(dtype))
                    if args.stream:
                        self._stream(finished, out)
                    else:
                        done.extend(finished)

                # -s: [interval] [count] bound the run (interval x count seconds), if given
                span = args.interval * (args.count or 1) if args.interval != FOREVER else None
                intervals = 0
                while True:
                    stream_loop(stop, ring, handle, duration=span if args.stream else args.interval)
                    if not args.stream:
                        self._report(summarise(done), pairing, args, out)
                        done.clear()
                    intervals += 1
                    if stop.stopped or args.stream or (args.count and intervals >= args.count):
                        break
                self._counts(pairing, report_drops(ring, out), out)
        return 0

    @staticmethod
    def _stream(requests, out):
        for r in requests:
            out.record({"tool": "httplat", **r})
            out.text(STREAM_ROW % (time.strftime("%H:%M:%S"), r["pid"], r["comm"], r["role"],
                                   "yes" if r["tls"] else "no", r["method"], r["path"][:36],
                                   r["status"], "%.3f" % r["lat_ms"]))

    @staticmethod
    def _report(rows, pairing, args, out):
        from ..report.histogram import format_log2
        out.text()
        if args.timestamp:
            out.text(clock_hms())
        out.text(TABLE_ROW % ("COMM", "ROLE", "METHOD", "ROUTE", "STATUS", "COUNT", "P50ms",
                              "P90ms", "P99ms", "MAXms"))
        for r in rows[:args.top]:
            out.text(TABLE_ROW % (r["comm"], r["role"], r["method"], r["route"][:36],
                                  r["status"], r["count"], "%.3f" % r["p50_ms"],
                                  "%.3f" % r["p90_ms"], "%.3f" % r["p99_ms"],
                                  "%.3f" % r["max_ms"]))
            if args.histogram:
                out.text(format_log2(r["histogram"]))
        if len(rows) > args.top:
            out.text(f"({len(rows) - args.top} more rows)")
        for r in rows:
            out.record({"tool": "httplat", **r})

    @staticmethod
    def _counts(pairing, drops, out):
        counts = {**pairing.counts, "in_flight": pairing.in_flight(), "dropped": drops}
        out.record({"tool": "httplat", "summary": counts})
        shown = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
        if shown:
            print(f"bpfsight httplat: not paired: {shown}", file=sys.stderr)
