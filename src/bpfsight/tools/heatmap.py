"""heatmap: a latency heat map (time x latency bucket, colour = count) from the output of a
histogram tool run with an interval (runqlat 1, biolatency --json 1, ...) or of an event tool
(biosnoop, NDJSON or text)."""
import argparse
import os
import sys

from ..errors import UsageError
from ..profile import heatmap
from ..outfile import output_file, write_outputs
from ..tool import Tool

FORMATS = {".html": "html", ".htm": "html", ".svg": "svg", ".png": "png"}


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid interval {text!r}: expected seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid interval {text!r}: must be positive")
    return value


def match_arg(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid match {text!r}: expected KEY=VALUE")
    return key, value


class Heatmap(Tool):
    name = "heatmap"
    summary = "latency heat map from a histogram tool's output"
    description = (
        "Draw a latency heat map: one column per interval (histogram input) or per --interval\n"
        "seconds (event input), one row per log2 latency bucket, colour = count.\n"
        "Input (a file or - for stdin), detected from its content:\n"
        "  * NDJSON histograms: `bpfsight runqlat --json 1 > h.ndjson`\n"
        "  * text histograms:   `bpfsight biolatency 1 > h.txt` (BCC's layout)\n"
        "  * NDJSON events:     `bpfsight biosnoop --json` (time_s/ts_ns and lat_ms/lat_us...)\n"
        "  * text event tables with a header line: TIME(s) ... LAT(ms)\n"
        "Output: -o FILE.html (self-contained), .svg or .png; without -o, text on stdout.")

    def add_arguments(self, p):
        p.add_argument("input", help="tool output to read, or - for stdin")
        p.add_argument("-o", "--output", metavar="FILE", type=output_file(*FORMATS),
                       help="write FILE.html, FILE.svg or FILE.png (default: text to stdout)")
        p.add_argument("-i", "--interval", type=positive_float, default=1.0,
                       help="seconds per column for event input (default 1)")
        p.add_argument("--time-field", help="event field/column holding the time")
        p.add_argument("--latency-field", help="event field/column holding the latency "
                                               "(unit from its suffix: _ns, _us, _ms, (ms))")
        p.add_argument("--match", type=match_arg, action="append", metavar="KEY=VALUE",
                       help="use only records whose KEY is VALUE (e.g. disk=sda); repeatable")
        p.add_argument("--title", default="Latency Heat Map", help="title of the graph")

    def run(self, args):
        fmt = FORMATS[os.path.splitext(args.output)[1].lower()] if args.output else None
        try:
            text = sys.stdin.read() if args.input == "-" else open(args.input).read()
        except OSError as exc:
            raise UsageError(f"cannot read {args.input}: {exc.strerror}")
        try:
            hm = heatmap.parse(text, args.interval, args.time_field, args.latency_field,
                               dict(args.match or ()))
        except ValueError as exc:
            raise UsageError(f"{args.input}: {exc}")
        if not hm.total:
            raise UsageError(f"{args.input}: no latencies found")
        if fmt is None:
            sys.stdout.write(heatmap.render_text(hm))
            return 0
        if fmt == "png":
            data = heatmap.render_png(hm)
        else:
            data = (heatmap.render_html if fmt == "html" else heatmap.render_svg)(hm, args.title)
        write_outputs(self.name, [(args.output, data)])
        print(f"{len(hm.columns)} columns, {hm.total} events", file=sys.stderr)
        return 0
