"""Typed errors of the BPF runtime. Each message is one line that says what to do; the CLI
prints it and exits 2 (the full detail, e.g. the whole verifier log, stays on the object)."""


class BPFError(Exception):
    """Base of every error the runtime raises on purpose."""


class NotSupportedError(BPFError):
    """A kernel or library feature is missing. `feature` names it for `doctor` and callers."""

    def __init__(self, feature, detail=""):
        self.feature = feature
        super().__init__(f"{feature} is not supported here" + (f": {detail}" if detail else ""))


class PermissionDenied(BPFError):
    def __init__(self, detail="loading BPF programs needs root (or CAP_BPF + CAP_PERFMON)"):
        super().__init__(f"{detail}; run it with sudo")


class NoBTFError(NotSupportedError):
    def __init__(self, path="/sys/kernel/btf/vmlinux"):
        super().__init__("btf", f"{path} is missing: this kernel was built without "
                                "CONFIG_DEBUG_INFO_BTF, which bpfsight's CO-RE programs need")


class MissingTracepointError(NotSupportedError):
    def __init__(self, tracepoint, tool=None):
        self.tracepoint = tracepoint
        who = f" (needed by {tool})" if tool else ""
        NotSupportedError.__init__(self, f"tracepoint {tracepoint}",
                                   f"this kernel does not have it{who}")


class VerifierError(BPFError):
    """The kernel refused a program. `log` keeps the whole verifier output."""

    def __init__(self, program, log_lines, errno_text):
        self.program = program
        self.log = log_lines
        useful = [ln.strip() for ln in log_lines
                  if ln.strip() and not ln.startswith(("processed ", "verification time"))]
        tail = " | ".join(useful[-2:])
        super().__init__(f"the kernel's verifier rejected program '{program}' ({errno_text})"
                         + (f": {tail}" if tail else ""))


class LoadError(BPFError):
    pass


class AttachError(BPFError):
    pass
