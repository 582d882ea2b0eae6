"""The explicit registry of subcommands: name -> (module, class, one-line purpose).
Modules are imported only when their command runs, so `bpfsight --help` and start-up stay cheap."""
from collections import namedtuple

Entry = namedtuple("Entry", "name module cls summary group")

REGISTRY = [
    Entry("doctor", "bpfsight.doctor", "Doctor",
          "probe this kernel's BPF features and say which tools can run", "setup"),
    Entry("execsnoop", "bpfsight.tools.execsnoop", "Execsnoop",
          "trace new processes (execve/execveat) with argv", "processes"),
    Entry("biolatency", "bpfsight.tools.biolatency", "Biolatency",
          "summarize block device I/O latency as a histogram", "block I/O"),
    Entry("runqlat", "bpfsight.tools.runqlat", "Runqlat",
          "summarize run-queue (scheduler) latency as a histogram", "scheduler"),
]


def lookup(name):
    return next((e for e in REGISTRY if e.name == name), None)


def load(entry):
    import importlib
    return getattr(importlib.import_module(entry.module), entry.cls)()
