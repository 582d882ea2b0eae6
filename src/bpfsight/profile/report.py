"""What profile and offcputime share: their stack options, the collection wait (which
snapshots each new process's maps while it is alive), and the reports: BCC's multi-line text,
folded (-f), NDJSON (--json), and files (--html, --svg, --pprof)."""
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from ..outfile import output_file, write_outputs
from ..tool import Option, event_ring, flag, positive_int, stream_loop
from .stacks import (StackDecoder, StackFormat, describe_errors, fold, folded_frames,
                     format_multiline, merge_samples, stack_errors, write_folded)

DEFAULT_STACK_STORAGE = 16384


def stack_options(annotations=True):
    """BCC's stack options, then bpfsight's file outputs."""
    options = [
        flag("-U", "--user-stacks-only", group="stacks",
             help="show stacks from user space only (no kernel space stacks)"),
        flag("-K", "--kernel-stacks-only", group="stacks",
             help="show stacks from kernel space only (no user space stacks)"),
        flag("-d", "--delimited", help="insert delimiter between kernel/user stacks")]
    if annotations:
        options.append(flag("-a", "--annotations", help="add _[k] annotations to kernel frames"))
    return (*options,
            flag("-f", "--folded",
                 help="output folded format, one line per stack (for flame graphs)"),
            Option("--stack-storage-size", type=positive_int("stack storage size"),
                   default=DEFAULT_STACK_STORAGE,
                   help="the number of unique stack traces that can be stored and displayed "
                        f"(default {DEFAULT_STACK_STORAGE})"),
            Option("--html", metavar="FILE", type=output_file(),
                   help="write a self-contained interactive flame graph (works offline)"),
            Option("--svg", metavar="FILE", type=output_file(), help="write a flame graph as SVG"),
            Option("--pprof", metavar="FILE", type=output_file(),
                   help="write a gzipped pprof profile (go tool pprof, Pyroscope, Parca)"))


def stack_format(args):
    return StackFormat(user_only=args.user_stacks_only, kernel_only=args.kernel_stacks_only,
                       delimited=args.delimited, annotate=getattr(args, "annotations", False))


def size_stack_maps(spec, args):
    """Room for --stack-storage-size distinct stacks, and as many aggregated entries."""
    for name in ("stackmap", "counts"):
        spec.maps[name].max_entries = args.stack_storage_size
    spec.set_global("wakeup_bytes", 1)  # new-process notes are rare and wanted at once


def banner(args, out, text):
    """The banner goes to stderr when stdout carries folded stacks or JSON."""
    if args.folded or args.json:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    else:
        out.banner(text)


def collect(stop, obj, symbolizer, duration, unwound=None):
    """Run until stopped or duration passes; meanwhile snapshot /proc/PID/maps of each process
    the kernel announces (its first recorded stack), so it resolves even if it exits. With
    unwound (profile --unwind dwarf), the ring also carries copied stacks, unwound as read."""
    ring = event_ring(obj)
    started = time.monotonic()
    if unwound is not None:
        handle = lambda r: unwound.add(r.read())  # noqa: E731
    else:
        handle = lambda r: [symbolizer.capture(int(pid))  # noqa: E731
                            for pid in r.read_array("<u4")]
    try:
        stream_loop(stop, ring, handle, duration=duration)
    finally:
        ring.close()
    elapsed = time.monotonic() - started
    symbolizer.refresh()
    return elapsed


def decode_stacks(obj, symbolizer, requests):
    return StackDecoder(obj.map("stackmap"), symbolizer).decode(requests)


def read_errors(obj):
    return stack_errors(obj.map("stack_errors"))


@dataclass
class StackReport:
    tool: str
    samples: list
    errors: dict
    unit: str                  # of Sample.value: "samples" or "us"
    title: str
    subtitle: str
    pprof_types: list          # [(type, unit)] for pprof values
    pprof_values: Callable     # sample -> [values]
    pprof_period: tuple = (None, 0)  # ((type, unit), period)
    duration_s: float = 0
    suffix: Callable = field(default=lambda s: "")  # text after "comm (pid)"
    # more of the run's summary: {name: (data, describe(data) -> a line for stderr or None)}
    summaries: dict = field(default_factory=dict)

    def add_summary(self, name, data, describe):
        self.summaries[name] = (data, describe)


def emit(report, args, out):
    fmt = stack_format(args)
    samples = sorted(merge_samples(report.samples), key=lambda s: s.value)  # BCC: largest last
    for s in samples:
        out.record({"tool": report.tool, "unit": report.unit, **s.to_dict()})
    files = args.html or args.svg or args.pprof
    if not args.json:
        if args.folded:
            write_folded(fold(samples, fmt), sys.stdout)
        elif not files:
            for s in samples:
                out.text(format_multiline(s, fmt, report.suffix(s)))
    _write_files(report, args, fmt, samples)
    summary = {"tool": report.tool, "stack_errors": report.errors}
    summary.update((name, data) for name, (data, _) in report.summaries.items())
    out.record(summary)
    lines = [describe_errors(report.errors)]
    lines += [describe(data) for data, describe in report.summaries.values()]
    for line in lines:
        if line:
            print(line, file=sys.stderr)
    sys.stdout.flush()


def describe_unwinding(unwinding):
    line = (f"user stacks unwound with .eh_frame: {unwinding['stacks']}, "
            f"{unwinding['complete_pct']:.1f}% complete (reached _start or a thread start)")
    if unwinding["dropped"]:
        line += f"; {unwinding['dropped']} samples dropped (ring full)"
    return line


def _write_files(report, args, fmt, samples):
    from . import flamegraph, pprof  # only when a file is asked for
    errs = describe_errors(report.errors)
    subtitle = report.subtitle + (f" | {errs}" if errs else "")
    files = []
    if args.html or args.svg:
        tree = flamegraph.build_tree(fold(samples, fmt))
        if args.html:
            files.append((args.html, flamegraph.render_html(tree, report.title, subtitle,
                                                            report.unit)))
        if args.svg:
            files.append((args.svg, flamegraph.render_svg(tree, report.title, subtitle,
                                                          report.unit)))
    if args.pprof:
        stacks = [(folded_frames(s, fmt)[::-1], report.pprof_values(s),
                   {"comm": s.comm, "pid": s.pid, **{k: v for k, v in s.labels.items()
                                                    if isinstance(v, (int, str))}})
                  for s in samples]
        ptype, period = report.pprof_period
        prof = pprof.build_profile(stacks, report.pprof_types, ptype, period,
                                   duration_ns=report.duration_s * 1e9, time_ns=time.time_ns(),
                                   comments=[f"bpfsight {report.tool}: {report.subtitle}"])
        files.append((args.pprof, pprof.pprof_bytes(prof)))
    write_outputs(report.tool, files)
