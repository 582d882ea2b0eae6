"""Errors of the command line (bad arguments, unknown targets). Runtime errors live in
bpfsight.bpf.errors; the CLI turns both into one line on stderr and exit code 2."""
from .bpf.errors import BPFError


class UsageError(BPFError):
    pass


class OutputError(BPFError):
    """A result file could not be written where asked (its data was saved elsewhere)."""
