"""Where bpfsight keeps what it derives once and reuses across runs (a vmlinux.h for users'
programs, CFI tables, the vDSO image): $XDG_CACHE_HOME/bpfsight, else ~/.cache/bpfsight."""
import os


def cache_dir(*parts):
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bpfsight", *parts)


def write_atomically(path, data):
    """Write bytes to path through a temporary file, so a reader never sees half of it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
