"""What the block I/O tools (biosnoop, biotop, biostat) share in user space: disk names and
numbers, BCC's rwbs op letters, and which submitter hook this kernel has (bpf/include/
block.bpf.h)."""
from .bpf import features
from .errors import UsageError

REQ_OP_MASK = 0xFF
REQ_OP_WRITE, REQ_OP_FLUSH, REQ_OP_DISCARD, REQ_OP_SECURE_ERASE = 1, 2, 3, 5
REQ_SYNC, REQ_META, REQ_FUA, REQ_PREFLUSH, REQ_RAHEAD = (1 << 11, 1 << 12, 1 << 17, 1 << 18,
                                                         1 << 19)
_OP_LETTERS = {0: "R", REQ_OP_WRITE: "W", REQ_OP_FLUSH: "F", REQ_OP_DISCARD: "D",
               REQ_OP_SECURE_ERASE: "DE"}


def disk_names():
    """{MKDEV(major, minor) as the kernel encodes it: name} from /proc/diskstats."""
    names = {}
    with open("/proc/diskstats") as f:
        for line in f:
            major, minor, name = line.split()[:3]
            names[(int(major) << 20) | int(minor)] = name
    return names


def disk_dev(name):
    for dev, n in disk_names().items():
        if n == name:
            return dev
    raise UsageError(f"no disk named {name!r} in /proc/diskstats")


class DiskNames:
    """Kernel disk numbers to names, re-read when a disk appears after start-up."""

    def __init__(self):
        self.names = disk_names()

    def __call__(self, dev, unknown="Unknown"):
        if dev not in self.names:
            self.names = disk_names()
        return self.names.get(dev, unknown)


def rwbs(cmd_flags):
    """BCC's T column: F for a preflush, the op (R W D DE F, N for others), then F(UA),
    A (readahead), S (sync), M (metadata)."""
    s = "F" if cmd_flags & REQ_PREFLUSH else ""
    s += _OP_LETTERS.get(cmd_flags & REQ_OP_MASK, "N")
    for bit, letter in ((REQ_FUA, "F"), (REQ_RAHEAD, "A"), (REQ_SYNC, "S"), (REQ_META, "M")):
        if cmd_flags & bit:
            s += letter
    return s


SUBMITTER_PROGS = {"block_io_start": ("submit_io_start", "submit_io_start_raw"),
                   "block_getrq": ("submit_getrq", "submit_getrq_raw")}


def choose_submitter_hooks(spec):
    """Keep one way of learning a request's submitter: block_io_start where the kernel has it
    (one event per request, in the submitter's context), else block_getrq."""
    keep = "block_io_start" if features.btf_tracepoint_exists("block_io_start") else "block_getrq"
    for hook, progs in SUBMITTER_PROGS.items():
        if hook != keep:
            for name in progs:
                spec.programs[name].autoload = False
    return spec
