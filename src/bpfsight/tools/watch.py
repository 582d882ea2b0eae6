"""watch: security events against rules evaluated in the kernel (docs/watch.md), each alert
with its process's context and ancestry."""
import ipaddress
import os
import sys
import time

from .. import watchrules
from ..errors import UsageError
from ..report.grouped import comm_of
from ..tool import (Option, StopSignal, Tool, disable_programs, event_ring, flag, output_for,
                    report_drops, stream_loop)

KIND_NAMES = {v: k for k, v in watchrules.KINDS.items()}
AF_INET = 2
ANCESTRY_DEPTH = 8
ROW = "%-8s %-8s %-24s %-7s %-16s %s"


class Process:
    __slots__ = ("pid", "ppid", "comm", "exe", "argv")

    def __init__(self, pid, ppid, comm, exe, argv):
        self.pid, self.ppid, self.comm, self.exe, self.argv = pid, ppid, comm, exe, argv

    def to_dict(self):
        return {"pid": self.pid, "comm": self.comm, "exe": self.exe, "argv": self.argv}


def from_proc(pid):
    """A running process's context from /proc, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = ""
    except OSError:
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    ppid = int(stat[stat.rindex(")") + 2:].split()[1])
    return Process(pid, ppid, comm, exe, argv)


class Ancestry:
    """Each process's exe, argv and parent, kept from the exec records (every exec reaches
    user space) and read from /proc for processes started before the watch: the chain of an
    alert is whole even when its ancestors have exited since."""

    def __init__(self, limit=65536):
        self.known = {}
        self.limit = limit

    def exec_seen(self, pid, ppid, comm, exe, argv):
        if len(self.known) >= self.limit:
            self.known.clear()  # bounded: older entries are read from /proc again
        self.known[pid] = Process(pid, ppid, comm, exe, argv)

    def of(self, pid):
        p = self.known.get(pid)
        if p is None:
            p = from_proc(pid)
            if p is not None:
                self.known[pid] = p
        return p

    def chain(self, ppid, parent_comm=""):
        """The parents from ppid up. parent_comm, the parent's name as the kernel had it at
        the event, names the first: a process may rename itself after its exec."""
        out, seen = [], set()
        while ppid > 0 and ppid not in seen and len(out) < ANCESTRY_DEPTH:
            seen.add(ppid)
            p = self.of(ppid)
            entry = p.to_dict() if p else {"pid": ppid, "comm": "?"}
            if not out and parent_comm:
                entry["comm"] = parent_comm
            out.append(entry)
            if p is None:
                break
            ppid = p.ppid
        return out


def argv_of(raw, length):
    data = bytes(raw)[:max(0, min(int(length), len(raw)))]
    return [a.decode(errors="replace") for a in data.split(b"\0") if a]


def detail(e, kind):
    """The event's own fields, as plain data."""
    path = comm_of(e["path"])
    if kind == "open":
        return {"path": path, "flags": int(e["arg"]), "ret": int(e["ret"])}
    if kind == "exec":
        return {"path": path}
    if kind in ("connect", "listen"):
        raw = bytes(e["addr"])
        addr = ipaddress.ip_address(raw[:4] if int(e["family"]) == AF_INET else raw)
        return {"addr": str(addr), "port": int(e["port"])}
    if kind == "ptrace":
        return {"target_pid": int(e["arg"])}
    if kind == "mount":
        return {"target": path, "source": comm_of(e["args"]), "flags": int(e["arg"])}
    if kind == "module":
        return {"syscall": int(e["arg"])}
    return {}


def summary_line(kind, d):
    if kind == "open":
        return f"{d['path']} flags=0x{d['flags']:x} ret={d['ret']}"
    if kind in ("connect", "listen"):
        return f"{d['addr']} port {d['port']}"
    if kind == "exec":
        return d["path"]
    return " ".join(f"{k}={v}" for k, v in d.items())


class Watch(Tool):
    name = "watch"
    summary = "security events against rules matched in the kernel, with process ancestry"
    description = (
        "Alert on what the rules describe (exec, open, connect, listen, set*id to root, capset,\n"
        "ptrace attach, module and BPF program loads, mount), matched in the kernel: paths\n"
        "and networks in LPM tries, process names, uid and cgroup per rule; only matches\n"
        "(and every exec, for the ancestry) reach user space. Each alert names the rule, its\n"
        "severity, the event and the process: pid, exe, argv, uid, cgroup and its parent\n"
        "chain. Without -r the default rules run (--show-rules prints them; docs/watch.md\n"
        "explains the language). action: kill sends SIGKILL from the hook: the syscall in\n"
        "progress completes (an open opens, a connect's SYN leaves), nothing after it runs.\n"
        "Open paths are matched as the program gave them when absolute, else resolved from\n"
        "the opened file; a relative open that fails is not seen.")
    target = True
    options = (
        Option("-r", "--rules", metavar="FILE", help="the rules file (YAML; default: the "
                                                    "built-in rules)"),
        flag("--show-rules", help="print the rules in effect and exit"),
        flag("--no-ancestry", help="send only the execs a rule matches to user space, not "
                                   "every exec (alerts then name the parents still running)"),
        Option("-d", "--duration", type=float, metavar="SECONDS",
               help="watch this long (default: until Ctrl-C)"),
    )

    def configure(self, spec, opts):
        if opts.duration is not None and opts.duration <= 0:
            raise UsageError("duration must be positive")
        if opts.rules:
            try:
                with open(opts.rules) as f:
                    text = f.read()
            except OSError as exc:
                raise UsageError(f"cannot read rules file {opts.rules}: {exc.strerror}") from None
            source = opts.rules
        else:
            text, source = watchrules.DEFAULT_RULES, "default rules"
        self._text = text
        self._rules = watchrules.load(text, source)
        kinds = {r.kind for r in self._rules}
        from ..syscalls import syscall_nr
        spec.set_globals(nrules=len(self._rules), exec_notes=not opts.no_ancestry,
                         open_rules_unlisted=any(r.kind == "open" and (
                             not r.fields["listed"] or r.fields["unlisted"])
                             for r in self._rules),
                         nr_init_module=syscall_nr("init_module") or 0xFFFFFFFF,
                         nr_finit_module=syscall_nr("finit_module") or 0xFFFFFFFF)
        if "module" not in kinds:  # the raw sys_enter runs at every syscall: only when asked
            disable_programs(spec, *[n for n in spec.programs if n.startswith("watch_sys_enter")])

    def attach(self, obj, opts):
        watchrules.load_into(obj, self._rules)
        obj.attach_all()

    def rules_of(self, mask):
        return [r for r in self._rules if mask >> r.index & 1]

    def suppressed(self, obj):
        """{rule name: alerts over its rate so far}."""
        keys, values = obj.map("rates").read_all()
        return {self._rules[int(k)].name: int(v["suppressed"]) for k, v in zip(keys, values)
                if int(k) < len(self._rules) and int(v["suppressed"])}

    def banner_for(self, opts):
        return (f"Watching with {len(self._rules)} rules... Hit Ctrl-C to end.\n" +
                ROW % ("TIME", "SEVERITY", "RULE", "PID", "COMM", "EVENT"))

    def run(self, args):
        out = output_for(args)
        spec = self.open(args)
        if args.show_rules:
            out.text(self._text.rstrip())
            return 0
        ancestry = Ancestry()
        with StopSignal() as stop, spec.load() as obj:
            self.attach(obj, args)
            out.banner(self.banner_for(args))
            dtype = obj.record_dtype()
            with event_ring(obj) as ring:
                stream_loop(stop, ring, lambda r: self._handle(r.read_array(dtype), ancestry,
                                                               out), duration=args.duration)
                drops = report_drops(ring, out)
            self._suppressed(obj, drops, out)
        return 0

    def _handle(self, batch, ancestry, out):
        for e in batch:
            kind_nr, pid = int(e["kind"]), int(e["pid"])
            if kind_nr in (watchrules.EXEC_NOTE, watchrules.KINDS["exec"]):
                ancestry.exec_seen(pid, int(e["ppid"]), comm_of(e["comm"]), comm_of(e["path"]),
                                   argv_of(e["args"], e["arg"]))
            if kind_nr == watchrules.EXEC_NOTE:
                continue
            self._alert(e, KIND_NAMES.get(kind_nr, str(kind_nr)), ancestry, out)

    def _alert(self, e, kind, ancestry, out):
        pid, mask = int(e["pid"]), int(e["rules"])
        rules = self.rules_of(mask)
        me = ancestry.of(pid) if kind != "exec" else ancestry.known.get(pid)
        d = detail(e, kind)
        alert = {"tool": "watch", "ts_ns": int(e["ts_ns"]),
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "rule": rules[0].name if rules else "?", "rules": [r.name for r in rules],
                 "severity": max((r.severity for r in rules),
                                 key=watchrules.SEVERITIES.index, default="medium"),
                 "kind": kind, "event": d, "killed": bool(e["killed"]),
                 "process": {"pid": pid, "tid": int(e["tid"]), "ppid": int(e["ppid"]),
                             "uid": int(e["uid"]), "comm": comm_of(e["comm"]),
                             "exe": me.exe if me else "", "argv": me.argv if me else [],
                             "cgroup_id": int(e["cgid"]), "cgroup": cgroup_path(pid)},
                 "ancestry": ancestry.chain(int(e["ppid"]), comm_of(e["pcomm"]))}
        out.record(alert)
        chain = " <- ".join(f"{a.get('comm', '?')}({a['pid']})" for a in alert["ancestry"])
        killed = " [killed]" if alert["killed"] else ""
        out.text(ROW % (time.strftime("%H:%M:%S"), alert["severity"], alert["rule"][:24], pid,
                        alert["process"]["comm"], summary_line(kind, d) + killed +
                        (f"  <- {chain}" if chain else "")))

    def _suppressed(self, obj, drops, out):
        over = self.suppressed(obj)
        out.record({"tool": "watch", "summary": {"suppressed": over, "dropped": drops}})
        for name, n in over.items():
            print(f"bpfsight watch: rule {name}: {n} alerts over its rate, not shown",
                  file=sys.stderr)


def cgroup_path(pid):
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return next((ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")), "")
    except OSError:
        return ""
