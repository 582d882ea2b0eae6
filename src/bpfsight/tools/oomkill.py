"""oomkill: trace OOM-killer victims and who triggered the kill (BCC's oomkill)."""
import resource
import time

from ..tool import Tool, add_output_args, open_spec, output_for, select_hooks, snoop

PAGE_KB = resource.getpagesize() // 1024


def event_dtype():
    """struct oom_event (bpf/oomkill.bpf.c)."""
    import numpy as np
    return np.dtype([("tpid", "<u4"), ("kpid", "<u4"), ("uid", "<u4"), ("oom_score_adj", "<i4"),
                     ("total_vm", "<u8"), ("anon_rss", "<u8"), ("file_rss", "<u8"),
                     ("shmem_rss", "<u8"), ("pgtables", "<u8"), ("tcomm", "S16"),
                     ("kcomm", "S16")])


def decode(e):
    out = {"tpid": int(e["tpid"]), "tcomm": e["tcomm"].decode(errors="replace"),
           "kpid": int(e["kpid"]), "kcomm": e["kcomm"].decode(errors="replace"),
           "uid": int(e["uid"]), "oom_score_adj": int(e["oom_score_adj"])}
    for field in ("total_vm", "anon_rss", "file_rss", "shmem_rss", "pgtables"):
        out[field + "_kb"] = int(e[field])
    out["rss_pages"] = (out["anon_rss_kb"] + out["file_rss_kb"] + out["shmem_rss_kb"]) // PAGE_KB
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


class Oomkill(Tool):
    name = "oomkill"
    summary = "trace OOM killer victims"
    description = (
        "Trace OOM killer victims (BCC's oomkill), from the oom:mark_victim tracepoint.\n\n"
        "\"Triggered by\" is the task whose allocation ran out of memory. BCC's \"N pages\" is\n"
        "the size of the OOM domain (oom_control->totalpages, only reachable with a kprobe on\n"
        "oom_kill_process); here it is the victim's resident set (anon + file + shmem) when it\n"
        "was chosen, hence \"pages rss\". --json adds total-vm, rss by kind and page tables.")

    def add_arguments(self, p):
        add_output_args(p)

    def run(self, args):
        out = output_for(args)
        spec = open_spec("oomkill", args, self.name)
        spec.set_global("wakeup_bytes", 1)  # rare and urgent: wake the reader for each
        select_hooks(spec, self.name)

        def show(ring):
            for e in map(decode, ring.read_array(event_dtype())):
                clock, load = time.strftime("%H:%M:%S"), loadavg()
                out.record({"tool": self.name, "time": clock, "loadavg": load, **e})
                out.text('%s Triggered by PID %d ("%s"), OOM kill of PID %d ("%s"), '
                         '%d pages rss, loadavg: %s' % (clock, e["tpid"], e["tcomm"], e["kpid"],
                                                        e["kcomm"], e["rss_pages"], load))

        return snoop(spec, out, "Tracing OOM kills... Hit Ctrl-C to end.", show)
