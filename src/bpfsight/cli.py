"""Command line entry point. Errors become exit codes here and only here: a BPFError or a bad
argument is one line on stderr and exit 2; tracebacks only with --debug."""
import argparse
import os
import sys

from . import __version__
from .bpf.errors import BPFError
from .errors import EXPECTED, UsageError
from .tools import REGISTRY, load, lookup


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line and exit 2. A `type=` function may
    raise UsageError, the project's own error for bad input (argparse itself only turns
    ArgumentTypeError, ValueError and TypeError into usage errors)."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)

    def _get_value(self, action, arg_string):
        try:
            return super()._get_value(action, arg_string)
        except UsageError as exc:
            raise argparse.ArgumentError(action, str(exc)) from None


def _formatter(prog):
    """argparse's help formatter with the width given: left to find it, argparse imports
    shutil (and with it zlib, bz2 and lzma) on every add_argument, ~2 ms of each start."""
    width = os.environ.get("COLUMNS", "")
    if not width.isdigit():
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (OSError, AttributeError, ValueError):
            width = 0
    width = int(width) or 80  # a terminal that says 0 columns: shutil's fallback too
    return argparse.RawDescriptionHelpFormatter(prog, width=max(width - 2, 11))


def _common(parser):
    parser.add_argument("-v", "--verbose", action="store_true", help="show libbpf's log")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _top_help():
    lines = ["usage: bpfsight [-v] [--debug] COMMAND [ARGS...]", "",
             "eBPF performance analysis for Linux: why is this slow?"]
    group = None
    for e in REGISTRY:
        if e.group != group:
            group = e.group
            lines += ["", f"{group}:"]
        lines.append(f"  {e.name:<14} {e.summary}")
    lines += ["", "Run 'bpfsight COMMAND --help' for a command's options."]
    return "\n".join(lines) + "\n"


def build_parser(entry):
    """(tool, its argument parser) for a registry entry."""
    tool = load(entry)
    parser = _Parser(prog=f"bpfsight {entry.name}", description=tool.description or entry.summary,
                     formatter_class=_formatter)
    _common(parser)
    tool.add_arguments(parser)
    return tool, parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = [a for a in argv if a in ("-v", "--verbose", "--debug")]
    rest = [a for a in argv if a not in ("-v", "--verbose", "--debug")] if argv and (
        argv[0] in ("-v", "--verbose", "--debug")) else argv
    if not rest or rest[0] in ("-h", "--help", "help"):
        sys.stdout.write(_top_help())
        return 0
    if rest[0] == "--version":
        print(f"bpfsight {__version__}")
        return 0
    entry = lookup(rest[0])
    if entry is None:
        sys.stderr.write(f"bpfsight: unknown command {rest[0]!r} (see bpfsight --help)\n")
        return 2
    tool, parser = build_parser(entry)
    parse = parser.parse_intermixed_args if tool.intermixed else parser.parse_args
    args = parse(rest[1:] + pre)
    if args.verbose:  # logging is imported only here: it costs ~3 ms of every start
        import logging
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        return _run(tool, entry, args)
    except (BPFError, *EXPECTED) as exc:
        if args.debug:
            raise
        sys.stderr.write(f"bpfsight {entry.name}: {exc}\n")
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"bpfsight {entry.name}: internal error: {type(exc).__name__}: {exc} "
                         "(rerun with --debug for the traceback)\n")
        return 1


def _run(tool, entry, args):
    """tool.run, with BPF run-time stats switched on around it for --stats."""
    if not getattr(args, "stats", False):
        return tool.run(args) or 0
    from .selfstats import SelfStats
    with SelfStats(entry.name, json_mode=getattr(args, "json", False),
                   per_interval=getattr(args, "timestamp", False) is True):
        return tool.run(args) or 0
