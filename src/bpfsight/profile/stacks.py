"""Stacks as plain data: decoded from the kernel's stack map, symbolized, and written as folded
lines (flamegraph.pl / inferno / speedscope), BCC's multi-line layout, or JSON.

Frames are kept leaf first, as the kernel returns them; folded lines are root first."""
import re
from dataclasses import dataclass, field
from typing import Optional

STACK_NONE = -32768  # bpf/include/stacks.h: not collected (not an error)
# enum stack_error in bpf/include/stacks.h, in order
STACK_ERRORS = ("kernel_collisions", "kernel_unreadable", "kernel_other",
                "user_collisions", "user_unreadable", "user_other", "counts_full",
                "blocks_untracked")
MISSED_KERNEL, MISSED_USER = "[Missed Kernel Stack]", "[Missed User Stack]"


@dataclass
class StackFormat:
    """How stacks are shown: BCC's -U/-K/-d/-a."""
    user_only: bool = False
    kernel_only: bool = False
    delimited: bool = False
    annotate: bool = False


@dataclass
class StackPair:
    kernel: tuple = ()   # names, leaf first
    user: tuple = ()
    kernel_missing: bool = False  # the kernel could not store it (see STACK_ERRORS)
    user_missing: bool = False

    def kernel_names(self, fmt):
        if self.kernel_missing:
            return [MISSED_KERNEL]
        return [n + "_[k]" for n in self.kernel] if fmt.annotate else list(self.kernel)

    def user_names(self):
        return [MISSED_USER] if self.user_missing else list(self.user)

    def both(self):
        return bool(self.kernel or self.kernel_missing) and bool(self.user or self.user_missing)


@dataclass
class Waker:
    comm: str
    pid: int
    stacks: StackPair


@dataclass
class Sample:
    """One aggregated stack: value is a sample count (profile) or microseconds (offcputime)."""
    comm: str
    pid: int
    value: int
    stacks: StackPair
    labels: dict = field(default_factory=dict)   # identity: tgid, state
    waker: Optional[Waker] = None
    counts: dict = field(default_factory=dict)   # additive: blocks, total_ns

    def identity(self):
        return (self.comm, self.pid, self.stacks.kernel, self.stacks.user,
                self.stacks.kernel_missing, self.stacks.user_missing,
                tuple(sorted(self.labels.items())),
                None if self.waker is None else (self.waker.comm, self.waker.pid,
                                                 self.waker.stacks.kernel, self.waker.stacks.user,
                                                 self.waker.stacks.kernel_missing,
                                                 self.waker.stacks.user_missing))

    def to_dict(self):
        d = {"comm": self.comm, "pid": self.pid, "value": self.value, **self.labels,
             **self.counts,
             "kernel_stack": self.stacks.kernel_names(StackFormat()),
             "user_stack": self.stacks.user_names()}
        if self.waker:
            d["waker"] = {"comm": self.waker.comm, "pid": self.waker.pid,
                          "kernel_stack": self.waker.stacks.kernel_names(StackFormat()),
                          "user_stack": self.waker.stacks.user_names()}
        return d


def merge_samples(samples):
    """One sample per distinct symbolized stack: the kernel keys stacks by address, so two
    return addresses in the same functions would otherwise print as two equal stacks."""
    merged = {}
    for s in samples:
        key = s.identity()
        m = merged.get(key)
        if m is None:
            merged[key] = Sample(s.comm, s.pid, s.value, s.stacks, dict(s.labels), s.waker,
                                 dict(s.counts))
        else:
            m.value += s.value
            for k, v in s.counts.items():
                m.counts[k] = m.counts.get(k, 0) + v
    return list(merged.values())


# --- folded ---

def _target_frames(pair, fmt):
    frames = []
    if not fmt.kernel_only:
        frames += pair.user_names()[::-1]
    if not fmt.user_only:
        if fmt.delimited and pair.both():
            frames.append("-")
        frames += pair.kernel_names(fmt)[::-1]
    return frames


def folded_frames(sample, fmt):
    """Root-first frame list of a sample, as BCC's -f prints it (offwaketime's layout when
    there is a waker: its stack stands upside down on top of the target's)."""
    frames = [sample.comm] + _target_frames(sample.stacks, fmt)
    if sample.waker is not None:
        w = sample.waker.stacks
        frames.append("--")
        if not fmt.user_only:
            frames += w.kernel_names(fmt)
        if not fmt.kernel_only:
            if fmt.delimited and w.both():
                frames.append("-")
            frames += w.user_names()
        frames.append(sample.waker.comm)
    return frames


def _clean(frame):
    # a ';' would split the frame, a space before the count would confuse readers
    return frame.replace(";", ":").replace("\n", " ")


def format_folded(frames, value):
    return ";".join(_clean(f) for f in frames) + f" {value}"


def fold(samples, fmt):
    """{root-first frame tuple: total value}: samples whose shown frames are equal merge."""
    out = {}
    for s in samples:
        key = tuple(folded_frames(s, fmt))
        out[key] = out.get(key, 0) + s.value
    return out


def write_folded(folded, stream):
    for frames, value in sorted(folded.items()):
        stream.write(format_folded(frames, value) + "\n")


def parse_folded_line(line):
    """(frames, value) of 'a;b;c 12' (the count is the last space-separated field; frame
    names may contain spaces). None for blank lines and comments."""
    line = line.rstrip("\r\n")
    if not line.strip() or line.startswith("#"):
        return None
    stack, _, count = line.rpartition(" ")
    try:
        value = int(count) if count.isdigit() else float(count)
    except ValueError:
        raise ValueError(f"not a folded stack line (no count at the end): {line[:80]!r}")
    return tuple(stack.split(";")) if stack else (), value


def read_folded(lines):
    """{frames: value} from folded lines; repeated stacks add up."""
    out = {}
    for n, line in enumerate(lines, 1):
        try:
            parsed = parse_folded_line(line)
        except ValueError as exc:
            raise ValueError(f"line {n}: {exc}") from None
        if parsed:
            frames, value = parsed
            out[frames] = out.get(frames, 0) + value
    return out


# --- BCC's multi-line layout ---

def _target_lines(pair, fmt):
    lines = []
    if not fmt.user_only:
        lines += pair.kernel_names(fmt)
    if not fmt.kernel_only:
        if fmt.delimited and pair.both():
            lines.append("--")
        lines += pair.user_names()
    return lines


def format_multiline(sample, fmt, suffix=""):
    """A stack the way BCC's profile/offcputime print it (offwaketime's with a waker)."""
    lines = []
    if sample.waker is not None:
        w = sample.waker
        lines.append("%-16s %s %s" % ("waker:", w.comm, w.pid))
        if not fmt.kernel_only:
            lines += w.stacks.user_names()
        if not fmt.user_only:
            if fmt.delimited and w.stacks.both():
                lines.append("-")
            lines += w.stacks.kernel_names(fmt)
        lines.append("%-16s %s" % ("--", "--"))
    lines += _target_lines(sample.stacks, fmt)
    lines.append("%-16s %s (%d)%s" % ("-", sample.comm, sample.pid, suffix))
    return "".join("    " + ln + "\n" for ln in lines) + "        %d\n" % sample.value


# --- decoding the kernel's stacks ---

# Frames of the tracing machinery itself at the leaf of a stack taken from a tracepoint
# program: they say where we looked from, not what the thread was doing.
_TRACING_FRAME = re.compile(r"bpf_prog_|bpf_trace_run\d+$|__bpf_trace_|__traceiter_|"
                            r"bpf_trampoline_")


def strip_tracing_frames(names):
    i = 0
    while i < len(names) and _TRACING_FRAME.match(names[i]):
        i += 1
    return names[i:]


class StackDecoder:
    """Reads stacks by id from a BPF stack-trace map and symbolizes every distinct address
    once (all kernel addresses in one lookup, user addresses in one lookup per process)."""

    def __init__(self, stackmap, symbolizer):
        self.stackmap = stackmap
        self.symbolizer = symbolizer
        self._addrs = {}

    def _stack(self, stack_id):
        if stack_id not in self._addrs:
            import numpy as np
            raw = self.stackmap.lookup_bytes(int(stack_id).to_bytes(4, "little"))
            ips = np.frombuffer(raw, dtype="<u8") if raw else np.zeros(0, "<u8")
            nz = np.flatnonzero(ips == 0)
            self._addrs[stack_id] = ips[:nz[0] if len(nz) else len(ips)].tolist()
        return self._addrs[stack_id]

    @staticmethod
    def _lookup_addrs(ips):
        # return addresses point after the call: look up the call itself (the leaf is exact)
        return [ip - 1 if i else ip for i, ip in enumerate(ips)]

    def _user(self, uid):
        """The user return addresses of a request: a stack id, or the addresses themselves
        (unwound in user space, bpfsight.profile.unwind); None when not collected."""
        if isinstance(uid, tuple):
            return list(uid)
        return self._stack(uid) if uid >= 0 else None

    def decode(self, requests):
        """requests: (tgid, kern_stack_id, user stack) triples, the user stack a stack id or a
        tuple of return addresses. Returns {triple: StackPair}."""
        kernel_addrs, user_addrs = set(), {}
        for tgid, kid, uid in requests:
            if kid >= 0:
                kernel_addrs.update(self._lookup_addrs(self._stack(kid)))
            ips = self._user(uid)
            if ips is not None:
                user_addrs.setdefault(tgid, set()).update(self._lookup_addrs(ips))
        knames = dict(zip(sorted(kernel_addrs), self.symbolizer.kernel(sorted(kernel_addrs))))
        unames = {}
        for tgid, addrs in user_addrs.items():
            addrs = sorted(addrs)
            unames[tgid] = dict(zip(addrs, self.symbolizer.user(tgid, addrs)))
        out = {}
        for req in requests:
            tgid, kid, uid = req
            kernel = user = ()
            if kid >= 0:
                kernel = tuple(strip_tracing_frames(
                    [knames[a] for a in self._lookup_addrs(self._stack(kid))]))
            ips = self._user(uid)
            if ips is not None:
                user = tuple(unames[tgid][a] for a in self._lookup_addrs(ips))
            user_missing = ips is None and uid != STACK_NONE
            out[req] = StackPair(kernel, user, kid < 0 and kid != STACK_NONE, user_missing)
        return out


def stack_errors(errors_map):
    """{cause: count} summed over CPUs from the per-CPU stack_errors array."""
    _, values = errors_map.read_all()  # typed by its BTF: u32 -> u64 per CPU
    totals = values.sum(axis=1).tolist() if len(values) else [0] * len(STACK_ERRORS)
    return dict(zip(STACK_ERRORS, (int(v) for v in totals)))


def describe_errors(errors):
    """One line for the user, or None when nothing was lost."""
    lost = {k: v for k, v in errors.items() if v}
    if not lost:
        return None
    parts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in lost.items())
    hint = ""
    if any(k.endswith(("collisions", "counts_full")) for k in lost):
        hint = " Consider increasing --stack-storage-size."
    return f"WARNING: stacks not recorded ({parts}).{hint}"
