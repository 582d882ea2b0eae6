"""bpfsight: eBPF performance analysis for Linux.

The Python API (docs/api.md): `bpfsight.attach(name, **options)` runs a shipped tool and gives
its records as plain data; `bpfsight.Program` runs your own BPF program and reads its maps.
Names are imported on first use, so `bpfsight` itself stays cheap to import."""
__version__ = "0.1.0"

_API = {"Program": "bpfsight.userprog", "attach": "bpfsight.api", "attachable": "bpfsight.api"}


def __getattr__(name):
    if name in _API:
        return getattr(__import__(_API[name], fromlist=[name]), name)
    raise AttributeError(f"module 'bpfsight' has no attribute {name!r}")


__all__ = ["Program", "attach", "attachable", "__version__"]
