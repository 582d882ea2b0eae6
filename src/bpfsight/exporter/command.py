"""`bpfsight exporter`: load the chosen tools' objects, aggregating in the kernel, and serve
their maps to Prometheus on every scrape."""
import argparse
import sys
from contextlib import ExitStack

from ..blockio import DiskNames
from ..bpf.errors import BPFError
from ..errors import UsageError
from ..tool import StopSignal, Tool, listen_arg, positive_int
from .labels import CgroupNames, ProcessLabels
from .series import OTHER

DEFAULT_LISTEN = "127.0.0.1:9435"


def collector_list(text):
    from .collectors import COLLECTORS
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in COLLECTORS]
    if unknown or not names:
        raise UsageError(f"unknown collector {', '.join(unknown) or repr(text)}: choose from "
                         f"{','.join(COLLECTORS)}")
    return list(dict.fromkeys(names))


def seconds_arg(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}: expected 0-3600")
    return value


def interface_list(text):
    """IFACE or NETNS/IFACE (a namespace made with `ip netns add`), comma-separated:
    [(netns or None, iface)]."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items or any(t.count("/") > 1 or t.startswith("/") or t.endswith("/") for t in items):
        raise UsageError(f"invalid interface list {text!r}: expected IFACE or NETNS/IFACE, "
                         "comma-separated")
    return [tuple(t.split("/")) if "/" in t else (None, t) for t in items]


class Context:
    """What collectors share: the cardinality cap, the label lookups, the interfaces."""

    def __init__(self, max_series, idle_s, interfaces=()):
        self.max_series = max_series
        self.idle_s = idle_s
        self.interfaces = list(interfaces)
        self.process_labels = ProcessLabels()
        self.cgroups = CgroupNames()
        self.disks = DiskNames()


class Exporter(Tool):
    name = "exporter"
    summary = "serve the tools' in-kernel aggregates as Prometheus metrics"

    @property
    def description(self):
        from .collectors import COLLECTORS
        lines = "\n".join(f"  {n:<12} {c.help}" for n, c in COLLECTORS.items())
        return (
            "Prometheus exporter: the tool suite's own BPF objects aggregate in the kernel and\n"
            "their maps are read when Prometheus scrapes /metrics (OpenMetrics when asked;\n"
            "/healthz for probes). Latency histograms are cumulative Prometheus histograms\n"
            "in seconds; counters never go back. Per-process metrics carry comm, cgroup,\n"
            "container_id and pod_uid (from the cgroup path; a process that exits before the\n"
            "scrape that first sees it keeps only its comm); each metric names at most\n"
            f"--max-series label sets, the rest are summed under \"{OTHER}\".\n\n"
            f"collectors (default: all but the opt-in ones):\n{lines}")

    def add_arguments(self, p):
        p.add_argument("--listen", default=DEFAULT_LISTEN, type=listen_arg,
                       metavar="HOST:PORT",
                       help=f"address to serve on (default {DEFAULT_LISTEN}: loopback only)")
        p.add_argument("--collectors", type=collector_list, metavar="LIST",
                       help="comma-separated collectors (default: every one this kernel runs, "
                             "but the opt-in ones)")
        p.add_argument("--interfaces", type=interface_list, metavar="LIST",
                       help="interfaces to count packets on (IFACE or NETNS/IFACE, "
                            "comma-separated): turns the pktstat collector on")
        p.add_argument("--max-series", type=positive_int("max-series"), default=25,
                       metavar="N", help="label sets named per metric before the rest are "
                                         "summed as 'other' (default 25)")
        p.add_argument("--series-idle", type=positive_int("series-idle"), default=600,
                       metavar="SECONDS", help="drop a named label set that has not grown for "
                                               "this long, freeing its slot (default 600)")
        p.add_argument("--cache", type=seconds_arg, default=1.0, metavar="SECONDS",
                       help="reuse a collection for scrapes this close together (default 1)")
        p.add_argument("--no-bpf-stats", action="store_true",
                       help="do not switch on BPF run-time statistics (per-program run time "
                            "self-metrics; timing adds ~20-50 ns per program run)")

    def run(self, args):
        from .collectors import COLLECTORS
        from .metrics import ProcessMetrics
        from .selfmetrics import SelfMetrics
        from .server import MetricsServer, Scraper
        ctx = Context(args.max_series, float(args.series_idle), args.interfaces or ())
        with StopSignal() as stop, ExitStack() as stack:
            bpf_stats = args.no_bpf_stats is False and _hold_bpf_stats(stack)
            names = args.collectors or [n for n, c in COLLECTORS.items() if c.default]
            if args.interfaces and "pktstat" not in names:
                names.append("pktstat")
            required = set(names if args.collectors else ()) | (
                {"pktstat"} if args.interfaces else set())
            collectors = _start(stack, ctx, names, required)
            _trim_heap()
            selfm = SelfMetrics(collectors, args.max_series, bpf_stats)
            scraper = Scraper(collectors, selfm, [ProcessMetrics()], args.cache)
            server = MetricsServer(args.listen, scraper).start()
            stack.callback(server.close)  # before the objects close: last scrape first
            print(f"Tracing for the exporter ({','.join(c.name for c in collectors)}): "
                  f"serving {server.url}/metrics ... Hit Ctrl-C to end.", flush=True)
            while stop.sleep(3600):
                pass
        return 0


BPF_STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"


def _hold_bpf_stats(stack):
    """Switch BPF run-time statistics on while the exporter runs. That takes CAP_SYS_ADMIN,
    which the DaemonSet does not grant: there the host's kernel.bpf_stats_enabled=1 does it."""
    from ..bpf.info import RunTimeStats
    try:
        stack.enter_context(RunTimeStats())
        return True
    except OSError as exc:
        try:
            with open(BPF_STATS_SYSCTL) as f:
                if f.read().strip() == "1":
                    return True
        except OSError:
            pass
        _warn(f"BPF run-time statistics unavailable ({exc.strerror}; set sysctl "
              "kernel.bpf_stats_enabled=1 instead): program run time self-metrics stay at 0")
        return False


def _start(stack, ctx, names, required):
    """Start each collector, their objects loaded in parallel: libbpf's load (the verifier),
    most of the start, runs outside the GIL. One of the default list this kernel cannot run is
    skipped with a warning, a required one (asked for by name) is an error."""
    import os
    from concurrent.futures import ThreadPoolExecutor
    from .collectors import COLLECTORS

    def start(name):
        collector, own = COLLECTORS[name](ctx), ExitStack()
        try:
            collector.start(own)
        except BaseException as exc:
            own.close()
            return collector, None, exc
        return collector, own, None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                            thread_name_prefix="bpfsight-load") as pool:
        results = list(pool.map(start, names))
    started, failure = [], None
    for name, (collector, own, exc) in zip(names, results):
        if exc is None:
            stack.enter_context(own)
            started.append(collector)
        elif isinstance(exc, (BPFError, UsageError)) and name not in required:
            _warn(f"collector {name} skipped: {exc}")
        elif failure is None:
            failure = exc
    if failure is not None:
        raise failure  # what started closes with stack
    if not started:
        raise UsageError("no collector could start")
    return started


def _trim_heap():
    """Give back what loading left in the C heap: the kernel's BTF as the feature probes parsed
    it (~11 MB, kept for the process), and what libbpf freed after parsing the kernel's BTF
    for each object's load (~7 MB) but glibc keeps."""
    import ctypes
    from ..bpf.features import release_vmlinux_btf
    release_vmlinux_btf()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc
        pass


def _warn(text):
    sys.stderr.write(f"bpfsight exporter: {text}\n")
    sys.stderr.flush()
