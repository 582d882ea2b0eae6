"""Errors of the command line and the runtime above the binding: bad arguments, unknown
targets, unwritable outputs. Not BPF errors: the binding (bpfsight.bpf.errors) knows nothing of
them. The CLI turns both kinds into one line on stderr and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: an argument, a file, a target."""


class OutputError(Exception):
    """A result file could not be written where asked (its data was saved elsewhere)."""


EXPECTED = (UsageError, OutputError)  # with BPFError: what the CLI reports as one line
