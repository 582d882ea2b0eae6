"""`bpfsight doctor`: what this kernel can do, found by trying, and which tools run on it."""
import os

from .bpf import features
from .bpf.object import ObjectSpec
from .bpf.errors import BPFError
from .tool import Tool, add_output_args, output_for, plan_hooks
from .tools import REGISTRY, load

# what a program section needs beyond the tracepoint families plan_hooks handles
_SECTION_FEATURE = {"uprobe": "uprobe", "uretprobe": "uprobe", "perf_event": "perf_cpu_clock",
                    "kprobe": "kprobe", "kretprobe": "kprobe", "fentry": "fentry",
                    "fexit": "fentry"}


def tool_support(name):
    """(runnable, [hook descriptions], reason) for the tool whose object is NAME.bpf.o."""
    path = os.path.join(os.path.dirname(__file__), "objects", f"{name}.bpf.o")
    if not os.path.exists(path):
        return True, [], "no BPF program of its own"
    try:
        spec = ObjectSpec(path)
    except BPFError as exc:
        return False, [], str(exc)
    try:
        hooks, missing = [], []
        for event, (chosen, variants) in plan_hooks(spec).items():
            if chosen is None:
                missing.append(variants[0][3])
            else:
                hooks.append(f"{chosen[2]}:{chosen[3]}")
        for prog in spec.programs.values():
            kind = prog.section.split("/")[0]
            need = _SECTION_FEATURE.get(kind)
            if need:
                (hooks if features.probe(need) else missing).append(prog.section)
        ok = not missing
        return ok, sorted(set(hooks)), "" if ok else "missing: " + ", ".join(missing)
    finally:
        spec.close()


class Doctor(Tool):
    name = "doctor"
    summary = "probe this kernel's BPF features and say which tools can run"

    def add_arguments(self, p):
        add_output_args(p)

    def run(self, args):
        from .bpf.object import check_privileges
        check_privileges()
        from .tracefs import mount_tracefs
        mount_tracefs()  # as every tool does before it starts
        out = output_for(args)
        feats = features.probe_all()
        tools = {e.name: tool_support(load(e).object_name or e.name)
                 for e in REGISTRY if e.name != "doctor"}
        out.record({"features": {f.name: {"available": f.available, "reason": f.reason}
                                 for f in feats},
                    "tools": {n: {"runnable": ok, "hooks": hooks, "reason": why}
                              for n, (ok, hooks, why) in tools.items()}})
        mark = {True: "yes", False: "no", None: "unknown"}
        out.text("%-16s %-9s %s" % ("FEATURE", "AVAILABLE", "DETAIL"))
        for f in feats:
            out.text("%-16s %-9s %s" % (f.name, mark[f.available], f.reason))
        out.text()
        out.text("%-16s %-5s %s" % ("TOOL", "RUNS", "HOOKS"))
        for n, (ok, hooks, why) in tools.items():
            out.text("%-16s %-5s %s" % (n, mark[ok], ", ".join(hooks) or why))
        runnable = sum(1 for ok, _, _ in tools.values() if ok)
        out.text(f"\n{runnable} of {len(tools)} tools can run on this kernel.")
        return 0
