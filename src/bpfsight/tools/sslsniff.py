"""sslsniff: the plaintext of OpenSSL reads and writes, as the program sees it (BCC's
sslsniff)."""
import textwrap

from ..binaries import resolve_binary
from ..errors import UsageError
from ..report.grouped import comm_of
from ..target import uid_arg
from ..tool import DURATION, Option, Tool, flag, positive_int

MAX_BUF = 16384  # bpf/sslsniff.bpf.c
FUNCS = ("READ/RECV", "WRITE/SEND")  # enum { DIR_READ, DIR_WRITE }
# (function, entry program): each returns through sslsniff_return
PROBES = (("SSL_read", "sslsniff_read"), ("SSL_write", "sslsniff_write"),
          ("SSL_read_ex", "sslsniff_read_ex"), ("SSL_write_ex", "sslsniff_write_ex"))


def head_dtype(record):
    """The fields of struct ssl_event before data[]: records are sent cut short after
    buf_filled bytes of data."""
    import numpy as np
    names = [n for n in record.names if n != "data"]
    return np.dtype({"names": names, "formats": [record.fields[n][0] for n in names],
                     "offsets": [record.fields[n][1] for n in names],
                     "itemsize": record.fields["data"][1]})


class Sslsniff(Tool):
    name = "sslsniff"
    summary = "print the plaintext of OpenSSL reads and writes (SSL_read/SSL_write)"
    description = (
        "Print the data passed to OpenSSL's SSL_write/SSL_write_ex and returned by\n"
        "SSL_read/SSL_read_ex, before encryption and after decryption (BCC's sslsniff),\n"
        "through uprobes on the libssl the target maps (or the system's; --libssl for\n"
        "another). Only what a call actually read or wrote is shown, up to\n"
        "--max-buffer-size bytes. Unlike BCC: OpenSSL only (no GnuTLS or NSS; statically\n"
        "linked TLS libraries are not seen), -c is a cgroup and --comm the process name\n"
        "filter, no --handshake.")
    streams = target = True
    fixed_size = False  # the data follows the fixed head
    options = (
        Option("-u", "--uid", type=uid_arg, help="trace this UID only"),
        flag("-x", "--extra", help="show extra fields (UID, TID)"),
        Option("--comm", help="sniff only commands matching this string"),
        flag("--hexdump", help="show data as hexdump instead of trying to decode it as UTF-8"),
        Option("--max-buffer-size", type=positive_int("max buffer size"), default=8192,
               help=f"size of captured buffer (default 8192, at most {MAX_BUF})"),
        flag("-l", "--latency", help="show function latency"),
        Option("--libssl", metavar="PATH",
               help="the OpenSSL library to trace (default: the target's, or the system's "
                    "libssl)"),
        DURATION)

    def banner_for(self, opts):
        header = "%-12s %-18s %-16s %-7s %-7s" % ("FUNC", "TIME(s)", "COMM", "PID", "LEN")
        if opts.extra:
            header += " %-7s %-7s" % ("UID", "TID")
        if opts.latency:
            header += " %-7s" % "LAT(ms)"
        return header

    def configure(self, spec, opts):
        if opts.max_buffer_size > MAX_BUF:
            raise UsageError(f"--max-buffer-size must be at most {MAX_BUF}")
        self._libssl = resolve_binary(opts.libssl or "ssl", opts.pid)
        spec.set_globals(max_buf=opts.max_buffer_size, wakeup_bytes=1)
        if opts.uid is not None:
            spec.set_global("targ_uid", opts.uid)
        spec.maps["events"].max_entries = 8 << 20
        self._start = None

    def attach(self, obj, opts):
        pid = opts.pid or -1
        for fn, entry in PROBES:
            obj.attach_uprobe(entry, self._libssl, fn, pid=pid)
            obj.attach_uprobe("sslsniff_return", self._libssl, fn, pid=pid, retprobe=True)

    def decode(self, batch, dtype, opts):
        import numpy as np
        head = head_dtype(dtype)
        for raw in batch:
            e = np.frombuffer(raw, dtype=head, count=1)[0]
            comm = comm_of(e["comm"])
            if opts.comm and opts.comm not in comm:
                continue
            if self._start is None:
                self._start = int(e["ts_ns"])
            filled = int(e["buf_filled"])
            data = bytes(raw[head.itemsize:head.itemsize + filled])
            yield {"ts_ns": int(e["ts_ns"]), "time_s": (int(e["ts_ns"]) - self._start) / 1e9,
                   "func": FUNCS[int(e["rw"])], "pid": int(e["pid"]), "tid": int(e["tid"]),
                   "uid": int(e["uid"]), "comm": comm, "len": int(e["len"]),
                   "lat_ms": int(e["delta_ns"]) / 1e6, "truncated": int(e["len"]) - filled,
                   "data": data.decode("utf-8", "replace"), "data_hex": data.hex()}

    def render(self, records, opts, out):
        for e in records:
            line = "%-12s %-18.9f %-16s %-7d %-6d" % (e["func"], e["time_s"], e["comm"],
                                                     e["pid"], e["len"])
            if opts.extra:
                line += " %-7d %-7d" % (e["uid"], e["tid"])
            if opts.latency:
                line += " %-7.3f" % e["lat_ms"]
            data = textwrap.fill(e["data_hex"], width=32) if opts.hexdump else e["data"]
            end = "-" * 5 + " END DATA " + "-" * 5
            if e["truncated"] > 0:
                end = "-" * 5 + f" END DATA (TRUNCATED, {e['truncated']} bytes lost) " + "-" * 5
            out.text("%s\n%s\n%s\n%s\n" % (line, "-" * 5 + " DATA " + "-" * 5, data, end))
