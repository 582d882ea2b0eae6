"""watch: real attempts, each caught by the right rule with the right process and ancestry —
a shell spawned by a process named like a web server, a program run from /tmp, /etc/shadow
read by absolute and relative path, a connect to a denied address (inside a namespace the
test made), setuid(0), a module load attempt, and a kill action that stops a process before
its write lands; an uninteresting flood of opens sends nothing to user space; bad rules files
name their line."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import Running, assert_released, bpf_objects_of
from toolrun import assert_usage_error, records

pytestmark = pytest.mark.bpf


class Watching:
    """`bpfsight watch --json [ARGS]` around a block of attempts; .alerts once it stopped."""

    def __init__(self, *args):
        self.args = args

    def __enter__(self):
        self.tool = Running("watch", "--json", *self.args).wait_attached()
        self.held = bpf_objects_of(self.tool.proc.pid)
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)  # the reader polls every 0.1 s
        rc, out, err = self.tool.stop()
        assert rc == 0, err
        assert "Traceback" not in err, err
        assert_released(self.held)
        recs = records(out)
        self.summary = next(r["summary"] for r in recs if "summary" in r)
        self.alerts = [r for r in recs if "rule" in r]
        self.err = err

    def of(self, rule, pid=None):
        return [a for a in self.alerts if a["rule"] == rule
                and (pid is None or a["process"]["pid"] == pid)]


def rules_file(tmp_path, text):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


SERVER = r"""
import ctypes, subprocess, sys
ctypes.CDLL(None).prctl(15, b"nginx", 0, 0, 0)  # PR_SET_NAME: named like a web server
subprocess.run(["/bin/sh", "-c", "exit 0"], check=True)
"""


def test_default_rules_shell_from_server_exec_from_tmp_and_shadow(tmp_path):
    """The default rules: a shell started by a process named nginx (with its argv and the
    parent chain up to this test), a program run from /tmp, /etc/shadow read by absolute and
    by relative path, setuid(0), and a module load attempt (ENOSYS here: the attempt is the
    event)."""
    program = tmp_path / "from-tmp"
    shutil.copy("/bin/true", program)
    assert str(program).startswith("/tmp/")
    with Watching() as w:
        server = subprocess.Popen([sys.executable, "-c", SERVER])
        server.wait(timeout=30)
        tmp_run = subprocess.run([str(program)], check=True)
        absolute = subprocess.Popen(["cat", "/etc/shadow"], stdout=subprocess.DEVNULL)
        relative = subprocess.Popen(["cat", "shadow"], cwd="/etc", stdout=subprocess.DEVNULL)
        absolute.wait(), relative.wait()
        setuid = subprocess.Popen([sys.executable, "-c", "import os; os.setuid(0)"])
        module = subprocess.Popen([sys.executable, "-c", "import ctypes; ctypes.CDLL(None)."
                                   "syscall(313, -1, b'', 0)"])  # finit_module
        setuid.wait(), module.wait()
    assert tmp_run.returncode == 0

    (shell,) = [a for a in w.of("shell-from-server") if a["ancestry"][0]["pid"] == server.pid]
    assert shell["severity"] == "critical" and shell["kind"] == "exec"
    assert shell["event"]["path"] == os.path.realpath("/bin/sh")
    assert shell["process"]["argv"] == ["/bin/sh", "-c", "exit 0"]
    assert shell["ancestry"][0]["comm"] == "nginx"
    assert os.getpid() in [a["pid"] for a in shell["ancestry"]]  # the chain reaches the test

    (ran,) = [a for a in w.of("exec-from-writable-dir") if a["event"]["path"] == str(program)]
    assert ran["process"]["ppid"] == os.getpid()

    reads = {a["process"]["pid"]: a for a in w.of("sensitive-file-read")}
    for proc in (absolute, relative):
        assert reads[proc.pid]["event"]["path"] == "/etc/shadow", reads.get(proc.pid)
        assert reads[proc.pid]["process"]["comm"] == "cat"
    assert w.of("setuid-root", setuid.pid)
    (mod,) = w.of("module-load", module.pid)
    assert mod["event"]["syscall"] == 313


def test_connect_to_a_denied_network_inside_a_namespace(tmp_path):
    """A rule denying a network: the connect attempt (to a namespace address the test made,
    refused there) is caught with its address and port; a connect elsewhere is not."""
    from netns import VethPath
    rules = rules_file(tmp_path, """
        rules:
          - name: denied-net
            kind: connect
            severity: high
            networks: [10.250.3.0/24]
            ports: [9]
    """)
    attempt = ("import socket\ntry:\n socket.create_connection(('%s', 9), timeout=5)\n"
               "except OSError as e:\n print(type(e).__name__)")
    with VethPath() as path, Watching("-r", rules) as w:
        denied = path.popen(path.a, attempt % path.B)
        other = subprocess.Popen([sys.executable, "-c", attempt % "127.0.0.1"],
                                 stdout=subprocess.PIPE, text=True)
        assert denied.communicate(timeout=30)[0].strip() == "ConnectionRefusedError"
        other.communicate(timeout=30)
    (alert,) = w.of("denied-net")
    assert alert["event"] == {"addr": path.B, "port": 9}
    assert alert["process"]["pid"] == denied.pid


WRITER = r"""
import os, sys, time
f = open(sys.argv[1], "r+")  # opened for writing, not truncated: the open changes nothing
f.write("changed")
f.close()
print("wrote", flush=True)
"""


def test_kill_action_stops_the_write(tmp_path):
    """action: kill on opening a file for writing: the process dies by SIGKILL before its
    write (the file keeps its bytes); a process only reading it is left alone."""
    target = tmp_path / "guarded.txt"
    target.write_text("original")
    rules = rules_file(tmp_path, f"""
        rules:
          - name: guard
            kind: open
            severity: critical
            paths: [{target}]
            access: [write]
            action: kill
    """)
    with Watching("-r", rules) as w:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                                  stdout=subprocess.PIPE, text=True)
        out = writer.communicate(timeout=30)[0]
        reader = subprocess.run(["cat", str(target)], capture_output=True, text=True)
    assert writer.returncode == -signal.SIGKILL and out == ""
    assert target.read_text() == "original" == reader.stdout
    (alert,) = w.of("guard")
    assert alert["killed"] and alert["process"]["pid"] == writer.pid


FLOOD = r"""
import os, sys
os.chdir("/usr/lib")
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[1])):
    os.close(os.open("/etc/hostname", os.O_RDONLY))  # absolute: matched at entry
    os.close(os.open("os-release", os.O_RDONLY))     # relative: resolved at exit
print("done", flush=True)
"""


def test_uninteresting_opens_never_reach_user_space():
    """20,000 opens (absolute and relative) of paths no rule lists, by -p: every one passed
    the open programs, no record reached the ring (--stats counts them)."""
    n = 10_000
    flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(n)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert flood.stdout.readline().strip() == "ready"
    tool = Running("watch", "-p", flood.pid, "--json", "--stats").wait_attached()
    flood.stdin.write("go\n")
    flood.stdin.flush()
    assert flood.stdout.readline().strip() == "done"
    rc, out, err = tool.stop()
    flood.kill()
    flood.wait()
    assert rc == 0, err
    stats = next(json.loads(ln)["stats"] for ln in err.splitlines() if '"stats"' in ln)
    runs = {p["program"]: p["runs"] for p in stats["programs"]}
    assert runs["watch_openat"] >= 2 * n and runs["watch_openat_exit"] >= 2 * n, runs
    assert sum(r["records"] for r in stats["rings"]) == 0, stats["rings"]
    assert [r for r in records(out) if "rule" in r] == []


@pytest.mark.parametrize("text, says", [
    ("rules:\n  - name: a\n    kind: open\n    pathz: [/etc/]\n", "rules.yaml:2: rule 'a': unknown key 'pathz'"),
    ("rules:\n  - name: a\n    kind: teleport\n", "rules.yaml:2: rule 'a': kind 'teleport'"),
    ("rules:\n  - name: a\n    kind: connect\n    networks: [10.0.0.300/8]\n", "rules.yaml:2: rule 'a': network '10.0.0.300/8'"),
    ("rules:\n  - name: a\n    kind: open\n    paths: [etc/shadow]\n", "rules.yaml:2: rule 'a': path 'etc/shadow'"),
    ("rules:\n  - name: a\n    kind: exec\n  - name: a\n    kind: exec\n", "rules.yaml:4: rule name 'a' used twice"),
    ("rules: [\n", "rules.yaml:2: not valid YAML"),
    ("rules: []\n", "non-empty 'rules' list"),
])
def test_bad_rules_files(tmp_path, text, says):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    err = assert_usage_error("watch", "-r", str(path))
    assert says in err, err


def test_bad_input():
    assert "cannot read rules file" in assert_usage_error("watch", "-r", "/no/such/rules.yaml")
    assert_usage_error("watch", "-d", "0")


def test_show_rules_prints_the_default_set():
    from helpers import run_bpfsight
    res = run_bpfsight("watch", "--show-rules")
    assert res.returncode == 0 and "shell-from-server" in res.stdout
    import yaml
    assert len(yaml.safe_load(res.stdout)["rules"]) == 12


def test_exporter_counts_alerts_by_rule():
    """`exporter --collectors watch`: the default rules' alerts counted by rule, severity and
    kind: three module-load attempts (nothing else on the host makes one) count exactly 3."""
    from promkit import Exporter, total
    attempt = "import ctypes; ctypes.CDLL(None).syscall(313, -1, b'', 0)"
    with Exporter("--collectors", "watch") as exp:
        first = exp.scrape()
        for _ in range(3):
            subprocess.run([sys.executable, "-c", attempt], check=True)
        subprocess.run(["cat", "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
        time.sleep(1.1)  # past the collection cache
        last = exp.scrape()

    def grew(**labels):
        name = "bpfsight_security_alerts_total"
        return total(last, name, **labels) - total(first, name, **labels)

    assert grew(rule="module-load", severity="critical", kind="module") == 3
    assert grew(rule="sensitive-file-read", severity="high", kind="open") >= 1


PRIVILEGED = r"""
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()        # listen
print("port", s.getsockname()[1], flush=True)
child = os.fork()
if child == 0:
    time.sleep(30); os._exit(0)
libc.ptrace(16, child, None, None)                                 # PTRACE_ATTACH
os.waitpid(child, 0)
libc.ptrace(17, child, None, None)                                 # PTRACE_DETACH
os.kill(child, 9); os.waitpid(child, 0)
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
hdr, data = Header(0x20080522, 0), (Data * 2)()
libc.capget(ctypes.byref(hdr), data)
libc.capset(ctypes.byref(hdr), data)                               # capset (to what it has)
os.makedirs(sys.argv[1], exist_ok=True)
libc.mount(b"none", sys.argv[1].encode(), b"tmpfs", 0, None)       # mount
libc.umount2(sys.argv[1].encode(), 0)
for _ in range(50):                                                # rate: 5 shown
    os.close(os.open("/etc/hostname", os.O_RDONLY))
"""


def test_listen_ptrace_capset_mount_bpf_and_rate(tmp_path):
    """The other kinds, each by a real attempt of one process (pid-matched): a listening
    socket with its port, ptrace attach with its target, capset, a mount with its target; a
    BPF program load by another process (a bpfsight tool); and a rule's rate: 50 opens, 5
    alerts, 45 counted as suppressed."""
    from helpers import BPFSIGHT
    mnt = str(tmp_path / "mnt")
    rules = rules_file(tmp_path, """
        rules:
          - {name: listens, kind: listen}
          - {name: traces, kind: ptrace}
          - {name: caps, kind: capset}
          - {name: mounts, kind: mount}
          - {name: loads, kind: bpf}
          - {name: hostname, kind: open, paths: [/etc/hostname], rate: 5}
    """)
    with Watching("-r", rules) as w:
        proc = subprocess.run([sys.executable, "-c", PRIVILEGED, mnt], capture_output=True,
                              text=True, timeout=60, check=True)
        loader = subprocess.Popen(BPFSIGHT + ["pidpersec", "1", "1"],
                                  stdout=subprocess.DEVNULL)
        loader.wait(timeout=60)
    port = int(proc.stdout.split()[1])
    assert {a["event"]["port"] for a in w.of("listens")} >= {port}
    (trace,) = [a for a in w.of("traces") if a["process"]["ppid"] == os.getpid()]
    assert trace["event"]["target_pid"] > 0
    assert [a for a in w.of("caps") if a["process"]["ppid"] == os.getpid()]
    assert [a["event"]["target"] for a in w.of("mounts")
            if a["process"]["ppid"] == os.getpid()] == [mnt]
    assert loader.returncode == 0 and w.of("loads", loader.pid)
    hostname = [a for a in w.of("hostname") if a["process"]["ppid"] == os.getpid()]
    assert len(hostname) == 5, hostname
    assert w.summary["suppressed"].get("hostname", 0) >= 45, w.summary
