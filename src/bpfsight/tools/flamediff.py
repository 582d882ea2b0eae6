"""flamediff: differential flame graph of two folded stack files (Gregg's difffolded.pl and
flamegraph.pl in one): widths from the second profile, red where a frame grew, blue where it
shrank."""
import os
import sys

from ..errors import UsageError
from ..profile.stacks import format_folded, read_folded
from ..outfile import output_file, write_outputs
from ..tool import Tool

FORMATS = {".html": "html", ".htm": "html", ".svg": "svg"}


def load_folded(path):
    try:
        with open(path) as f:
            folded = read_folded(f)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}")
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}")
    if not folded:
        raise UsageError(f"{path}: no stacks")
    return folded


def normalized(before, after):
    """before scaled to after's total, so a longer run does not read as growth everywhere."""
    scale = sum(after.values()) / sum(before.values())
    return {k: v * scale for k, v in before.items()}


def _num(v):
    return int(v) if float(v).is_integer() else round(v, 3)


class Flamediff(Tool):
    name = "flamediff"
    summary = "differential flame graph of two folded stack files"
    description = (
        "Compare two folded profiles (bpfsight profile -f, offcputime -f, perf script |\n"
        "stackcollapse, ...): frame width is the AFTER profile, colour the change from\n"
        "BEFORE (red grew, blue shrank, white unchanged). Without -o, print difffolded.pl's\n"
        "format: 'stack before after' per line.")

    def add_arguments(self, p):
        p.add_argument("before", help="folded stacks of the baseline")
        p.add_argument("after", help="folded stacks to compare with it")
        p.add_argument("-o", "--output", metavar="FILE", type=output_file(*FORMATS),
                       help="write FILE.html (interactive, self-contained) or FILE.svg")
        p.add_argument("-n", "--normalize", action="store_true",
                       help="scale BEFORE's counts to AFTER's total first")
        p.add_argument("--negate", action="store_true",
                       help="widths from BEFORE instead (shows what disappeared); colours "
                            "still mean change from BEFORE to AFTER")
        p.add_argument("--title", default="Differential Flame Graph", help="title of the graph")

    def run(self, args):
        fmt = FORMATS[os.path.splitext(args.output)[1].lower()] if args.output else None
        before, after = load_folded(args.before), load_folded(args.after)
        if args.normalize:
            before = normalized(before, after)
        if fmt is None:
            for frames in sorted(set(before) | set(after)):
                sys.stdout.write(format_folded(frames, _num(before.get(frames, 0))) +
                                 f" {_num(after.get(frames, 0))}\n")
            return 0
        from ..profile import flamegraph
        if args.negate:
            tree = flamegraph.build_tree(before, after)
            for node, _ in tree.walk():
                node.delta = -node.delta
        else:
            tree = flamegraph.build_tree(after, before)
        tb, ta = sum(before.values()), sum(after.values())
        subtitle = (f"{os.path.basename(args.before)} -> {os.path.basename(args.after)}: "
                    f"{_num(tb)} -> {_num(ta)} ({(ta - tb) / tb * 100:+.1f}%); width: "
                    f"{'before' if args.negate else 'after'}; red grew, blue shrank")
        render = flamegraph.render_html if fmt == "html" else flamegraph.render_svg
        write_outputs(self.name, [(args.output, render(tree, args.title, subtitle, "samples",
                                                       diff=True))])
        return 0
