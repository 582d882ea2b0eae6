"""What the TCP tools share on the user side: the -4/-6 and port-list arguments and the globals
they set (bpf/include/sock.bpf.h), decoding `struct flow` (bpf/include/flow.h), TCP state and
flag names, and the loop that streams fixed-size records from the ring buffer. Maps and records
are typed by the BPF object's BTF (Object.map, Object.record_dtype)."""
import argparse
import socket

from .bpf.errors import BPFError
from .tool import (LONG_DURATION, TIME_COLUMN, Option, StopSignal, event_ring, flag,
                   report_drops, stream_loop)

AF_INET, AF_INET6 = 2, 10
MAX_PORTS = 8  # sock.bpf.h MAX_PORTS

# include/net/tcp_states.h
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING", 12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE"}

TCP_FLAGS = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"]


# --- arguments ---

def port_list(text):
    """argparse type: '80' or '80,443' -> [80, 443]."""
    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port list {text!r}: expected numbers like 80,443")
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise argparse.ArgumentTypeError(f"invalid port list {text!r}: ports are 1-65535")
    if len(ports) > MAX_PORTS:
        raise argparse.ArgumentTypeError(f"invalid port list {text!r}: at most {MAX_PORTS} ports")
    return ports


def ip_address(text):
    """argparse type: an IPv4 or IPv6 address -> (family, 16 bytes, network order)."""
    import ipaddress
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid IP address {text!r}")
    return (AF_INET if ip.version == 4 else AF_INET6), ip.packed.ljust(16, b"\0")


FAMILY_OPTIONS = (flag("-4", "--ipv4", help="trace IPv4 family only", group="family"),
                  flag("-6", "--ipv6", help="trace IPv6 family only", group="family"))

# BCC's tcplife and tcpstates take the same: time columns, wide or CSV layout, port lists
SESSION_OPTIONS = (
    TIME_COLUMN,
    flag("-t", "--timestamp", help="include timestamp on output (seconds)"),
    flag("-w", "--wide", help="wide column output (fits IPv6 addresses)"),
    flag("-s", "--csv", help="comma separated values output"),
    Option("-L", "--localport", type=port_list,
           help="comma-separated list of local ports to trace"),
    Option("-D", "--remoteport", type=port_list,
           help="comma-separated list of remote ports to trace"),
    *FAMILY_OPTIONS,
    LONG_DURATION)


def set_net_filters(spec, args, lports=None, rports=None):
    """Write -4/-6 and the local/remote port lists into the sock.bpf.h globals."""
    if getattr(args, "ipv4", False):
        spec.set_global("targ_family", AF_INET)
    elif getattr(args, "ipv6", False):
        spec.set_global("targ_family", AF_INET6)
    for name, ports in (("targ_lports", lports), ("targ_rports", rports)):
        if ports:
            spec.set_global(name, b"".join(p.to_bytes(2, "little") for p in ports))


# --- decoding ---

def addr(family, raw):
    raw = bytes(raw)
    if family == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw[:16])


def ip_version(family):
    return 4 if family == AF_INET else 6


def flow_dict(f):
    """A decoded struct flow as plain data: {'ip', 'laddr', 'lport', 'raddr', 'rport'}."""
    family = int(f["family"])
    return {"ip": ip_version(family), "laddr": addr(family, f["saddr"]), "lport": int(f["sport"]),
            "raddr": addr(family, f["daddr"]), "rport": int(f["dport"])}


def tcp_state(n):
    return TCP_STATES.get(int(n), str(int(n)))


def tcp_flags(bits):
    """'SYN|ACK' (BCC's tcp.flags2str) for the TCP header's flag byte."""
    return "|".join(name for i, name in enumerate(TCP_FLAGS) if bits & (1 << i))


def read_flow_counts(obj, map_name="counts"):
    """[(flow_dict, count)] from a kernel map keyed by struct flow with u64 counts."""
    keys, values = obj.map(map_name).read_all()
    return [(flow_dict(k), int(v)) for k, v in zip(keys, values)]


class RelativeTime:
    """BCC's TIME(s) column: seconds since the first record shown."""

    def __init__(self):
        self.first = None

    def __call__(self, ts_ns):
        if self.first is None:
            self.first = ts_ns
        return (ts_ns - self.first) / 1e9


# --- streaming ---

def stream_records(stop, obj, show, duration=None):
    """Hand every fixed-size record of the object's `events` ring, decoded by the type its
    EVENT_RECORD names (bpf/include/events.bpf.h), to show(record) until stopped, then report
    records the kernel had to drop."""
    dtype = obj.record_dtype()
    if dtype is None:
        raise BPFError(f"{obj.name}: no record type for its ring (EVENT_RECORD missing)")
    ring = event_ring(obj)
    try:
        stream_loop(stop, ring, lambda r: [show(rec) for rec in r.read_array(dtype)],
                    duration=duration)
        report_drops(ring, None)
    finally:
        ring.close()


def count_mode(spec, opts):
    """-c: counts stay in the kernel; the ring buffer goes unused."""
    spec.set_global("targ_count", opts.count)
    if opts.count:
        spec.maps["events"].max_entries = 4096


def count_or_trace(tool, spec, args, out, banner):
    """What the -c (count in the kernel, print at the end) / trace (stream events) tools share,
    from a spec configured with count_mode: load, attach, banner, then
    tool.print_counts(obj, out) or tool.trace(stop, obj, out, args)."""
    with StopSignal() as stop, spec.load() as obj:
        obj.attach_all()
        out.banner(banner)
        if args.count:
            stop.sleep(args.duration or 99999999)
            tool.print_counts(obj, out)
        else:
            tool.trace(stop, obj, out, args)
    return 0


# --- the kernel's table of TCP sockets ---

INET_DIAG_INFO = 2
TCPI_BYTES = 120  # struct tcp_info: tcpi_bytes_acked, then tcpi_bytes_received (u64 each)
# every state of a socket that is connected and not yet closed
OPEN_STATES = (1, 4, 5, 8, 9, 11)  # ESTABLISHED, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING
LISTEN = 10


def tcp_sockets(states=OPEN_STATES + (LISTEN,)):
    """The TCP sockets of this network namespace in `states`, from the kernel's sock_diag
    (what `ss -ti` shows): [{'family', 'state', 'inode', 'saddr', 'sport', 'daddr', 'dport',
    'tx_b', 'rx_b'}], addresses as struct flow holds them (16 bytes, network order), bytes as
    tcp_sock's bytes_acked and bytes_received (the figures tcplife reads at CLOSE)."""
    import struct
    NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
    NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR = 1, 0x300, 3, 2
    mask = sum(1 << s for s in states)
    rows = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        for family in (AF_INET, AF_INET6):
            req = struct.pack("=BBBxI48x", family, socket.IPPROTO_TCP,
                              1 << (INET_DIAG_INFO - 1), mask)
            nl.send(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                                NLM_F_REQUEST | NLM_F_DUMP, family, 0) + req)
            done = False
            while not done:
                data, off = nl.recv(1 << 20), 0
                while off + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, off)
                    if kind in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
                        done = True
                        break
                    m = off + 16  # struct inet_diag_msg
                    fam, state = data[m], data[m + 1]
                    sport, dport = struct.unpack_from(">HH", data, m + 4)
                    row = {"family": fam, "state": state, "sport": sport, "dport": dport,
                           "saddr": data[m + 8:m + 24], "daddr": data[m + 24:m + 40],
                           "inode": struct.unpack_from("=I", data, m + 68)[0],
                           "tx_b": 0, "rx_b": 0}
                    a = m + 72
                    while a + 4 <= off + length:  # its attributes: tcp_info
                        alen, atype = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if atype == INET_DIAG_INFO and alen >= 4 + TCPI_BYTES + 16:
                            row["tx_b"], row["rx_b"] = struct.unpack_from(
                                "=QQ", data, a + 4 + TCPI_BYTES)
                        a += (alen + 3) & ~3
                    rows.append(row)
                    off += (length + 3) & ~3
    return rows
