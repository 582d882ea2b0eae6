"""run: a user's own BPF program with bpftrace's convenience — compiled, attached by section,
its maps printed decoded from BTF at each interval and at exit, its ring buffers streamed."""
import time
from contextlib import ExitStack

from .errors import UsageError
from .report.readings import record_line, render_reading
from .target import pid_arg, resolve_pid
from .tool import Option, StopSignal, Tool, listen_arg, output_for, positive_int
from .userprog import DEFAULT_FREQ, Program


def global_arg(text):
    """NAME=VALUE for a `const volatile` global: an integer (0x.. too) or text."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"invalid --set {text!r}: expected NAME=VALUE")
    try:
        return name, int(value, 0)
    except ValueError:
        return name, value.encode()


class Run(Tool):
    name = "run"
    summary = "run your own .bpf.c/.bpf.o: attach by section, print its maps decoded from BTF"
    description = (
        "Run your own BPF program: a .bpf.c is compiled with clang against this kernel's\n"
        "vmlinux.h and bpfsight's headers (bpf/include: hist.h, bits.bpf.h, maps.bpf.h); every\n"
        "program is attached by its section (tracepoint/, tp_btf/, raw_tp/, uprobe/PATH:FUNC,\n"
        "uretprobe/, usdt/, perf_event sampling at -F Hz). Every map is printed at each\n"
        "interval and at exit, decoded from the object's BTF: a value with a `slots` array is\n"
        "a log2 histogram per key, anything else a table sorted by its first counter; a field\n"
        "named *stack_id is symbolised. Ring buffer records print one per line (struct NAME for\n"
        "a ring named NAME, else struct event). Maps are cumulative, as in bpftrace.\n"
        "See docs/api.md and examples/.")
    intermixed = True

    options = (
        Option("program", help="a .bpf.c source or a compiled .bpf.o"),
        Option("-p", "--pid", type=pid_arg, help="perf_event programs sample this PID only"),
        Option("-F", "--frequency", type=positive_int("frequency"), default=DEFAULT_FREQ,
               help=f"perf_event sampling frequency in Hz (default {DEFAULT_FREQ})"),
        Option("-s", "--set", dest="globals", type=global_arg, action="append", default=[],
               metavar="NAME=VALUE", help="set a const volatile global before load (repeatable)"),
        Option("--top", type=positive_int("top"), default=20,
               help="rows of each table to print (default 20)"),
        Option("--exporter", metavar="HOST:PORT", type=listen_arg,
               help="also serve the maps as Prometheus metrics at http://HOST:PORT/metrics "
                    "(':PORT' for every address)"))
    intervals = True

    def run(self, args):
        out = output_for(args)
        program = Program(args.program, pid=resolve_pid(args.pid), freq=args.frequency,
                          globals=dict(args.globals))
        with StopSignal() as stop, program, ExitStack() as stack:
            attached = ", ".join(f"{n} ({p.section})" for n, p in program.obj.programs.items())
            serving = f" Serving {self._serve(program, args.exporter, stack)}/metrics." \
                if args.exporter else ""
            out.banner(f"Running {args.program}: {attached}.{serving} Hit Ctrl-C to end.")
            done, deadline = 0, time.monotonic() + args.interval
            while True:
                alive = self._wait(stop, program, out, deadline)
                self._print_maps(program, args, out)
                done += 1
                if not alive or (args.count is not None and done >= args.count):
                    break
                deadline += args.interval
        return 0

    @staticmethod
    def _serve(program, listen, stack):
        """The exporter's HTTP server over the program's maps; returns its URL."""
        from .exporter.program import ProgramCollector
        from .exporter.selfmetrics import SelfMetrics
        from .exporter.server import MetricsServer, Scraper
        collector = ProgramCollector(program)
        server = MetricsServer(listen, Scraper([collector], SelfMetrics([collector], 0, False),
                                               cache_s=0))  # every scrape reads the maps
        stack.callback(server.close)  # before the program closes: the last scrape first
        return server.start().url

    def _wait(self, stop, program, out, deadline):
        """Until deadline or a stop signal, streaming ring records if there are rings; False
        once stopped."""
        if not program.rings():
            return stop.sleep(max(0.0, deadline - time.monotonic()))
        while not stop.stopped and time.monotonic() < deadline:
            wait = min(0.1, max(0.0, deadline - time.monotonic()))
            stop.wait_on(program.poll, wait)
            _print_records(program.records(), out)
        _print_records(program.records(), out)
        return not stop.stopped

    def _print_maps(self, program, args, out):
        for reading in program.snapshot(top=args.top):
            out.record({"tool": self.name, **reading})
            out.text(render_reading(reading))


def _print_records(records, out):
    for rec in records:
        out.record(rec)
        out.text(record_line(rec))
