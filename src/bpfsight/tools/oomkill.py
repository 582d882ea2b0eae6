"""oomkill: trace OOM-killer victims and who triggered the kill (BCC's oomkill)."""
import resource
import time

from ..tool import Tool

PAGE_KB = resource.getpagesize() // 1024


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

    banner = "Tracing OOM kills... Hit Ctrl-C to end."
    streams = True

    def configure(self, spec, opts):
        spec.set_global("wakeup_bytes", 1)  # rare and urgent: wake the reader for each

    def decode(self, batch, dtype, opts):
        """Each kill: time, loadavg, the triggering task (tpid, tcomm), the victim (kpid,
        kcomm) and its memory (rss_pages, ...)."""
        for e in map(decode, batch):
            yield {"time": time.strftime("%H:%M:%S"), "loadavg": loadavg(), **e}

    def render(self, records, opts, out):
        for e in records:
            out.text('%s Triggered by PID %d ("%s"), OOM kill of PID %d ("%s"), '
                     '%d pages rss, loadavg: %s' % (e["time"], e["tpid"], e["tcomm"], e["kpid"],
                                                    e["kcomm"], e["rss_pages"], e["loadavg"]))
