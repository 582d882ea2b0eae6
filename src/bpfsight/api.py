"""The Python API for shipped tools: the same definition the CLI runs, options in, records out.

    import bpfsight
    with bpfsight.attach("biolatency", disk=True) as t:
        time.sleep(5)
        for rec in t.collect():          # what happened since the last collect()
            print(rec["disk"], rec["p99"])
        frame = t.to_pandas()            # the next interval, as a DataFrame

A tool is usable here when its definition has collect() (the ones that aggregate in the
kernel); `attachable()` lists them. Everything detaches at close or at the end of the `with`."""
from .errors import UsageError


def _definition(name):
    from .tools import load, lookup
    entry = lookup(name)
    if entry is None:
        raise UsageError(f"no tool named {name!r}")
    return load(entry)


def _defined(tool):
    """Whether the tool's definition gives records: collect() or, streaming, decode()."""
    from .tool import Tool
    return type(tool).collect is not Tool.collect or (
        tool.streams and type(tool).decode is not Tool.decode)


def attachable():
    """Names of the tools the Python API can run."""
    from .tools import REGISTRY, load
    return [e.name for e in REGISTRY if _defined(load(e))]


class ToolRun:
    """One tool loaded and attached with the given options (keywords: the tool's option
    names, as `bpfsight TOOL --help` shows them with dashes turned into underscores, plus
    pid= and cgroup= for tools that take a target)."""

    def __init__(self, name, **options):
        from .tool import Options
        self.tool = _definition(name)
        if not _defined(self.tool):
            raise UsageError(f"{name} is not available from Python yet (available: "
                             f"{', '.join(attachable())})")
        self.options = Options(self.tool, **options)
        self.obj = None
        self._ring = self._dtype = None

    def start(self):
        spec = self.tool.open(self.options)
        self.obj = spec.load()
        try:
            self.tool.attach(self.obj, self.options)
        except BaseException:
            self.close()
            raise
        return self

    def collect(self):
        """Records since the last collect() (or the start), as dicts. For a streaming tool,
        the records waiting now (see records())."""
        from .tool import as_dict
        self._started()
        if self.tool.streams:
            return self.records(timeout_s=0)
        return [as_dict(r) for r in self.tool.collect(self.obj, self.options)]

    def records(self, timeout_s=0.1):
        """A streaming tool's records that arrived (waiting up to timeout_s for the first),
        as dicts, in order."""
        from .tool import as_dict, event_ring
        self._started()
        if not self.tool.streams:
            raise UsageError(f"{self.tool.name} aggregates: use collect()")
        if self._ring is None:
            self._ring, self._dtype = event_ring(self.obj), self.obj.record_dtype()
        self._ring.poll(timeout_s)
        batch = self._ring.read_array(self._dtype) if self.tool.fixed_size else self._ring.read()
        return [as_dict(r) for r in self.tool.decode(batch, self._dtype, self.options)]

    def _started(self):
        if self.obj is None:
            raise UsageError("the tool is not started: use `with` or start()")

    def to_pandas(self, records=None):
        """collect() (or the records given) as a pandas DataFrame; histogram buckets stay a
        list per row."""
        try:
            import pandas
        except ImportError:
            raise UsageError("to_pandas() needs pandas (pip install pandas)") from None
        return pandas.DataFrame(self.collect() if records is None else records)

    def close(self):
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def attach(name, **options):
    """A shipped tool, ready to start: `with bpfsight.attach("runqlat", pids=True) as t: ...`."""
    return ToolRun(name, **options)
