"""The DaemonSet and the systemd unit: their exporter arguments parse with the exporter's own
parser, both grant the same three capabilities and no privileged mode, and the exporter runs
with every collector under exactly those capabilities."""
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from promkit import samples, total

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAEMONSET = os.path.join(ROOT, "deploy", "kubernetes", "daemonset.yaml")
UNIT = os.path.join(ROOT, "deploy", "systemd", "bpfsight-exporter.service")
CAPS = {"BPF", "PERFMON", "SYS_RESOURCE"}


def exporter_args(argv):
    """argv after `bpfsight`, parsed by the exporter's own argument parser."""
    from bpfsight.cli import _Parser
    from bpfsight.exporter.command import Exporter
    assert argv[0] == "exporter", argv
    parser = _Parser(prog="bpfsight exporter")
    Exporter().add_arguments(parser)
    return parser.parse_args(argv[1:])


def daemonset():
    import yaml
    with open(DAEMONSET) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return next(d for d in docs if d["kind"] == "DaemonSet")


def unit():
    """{key: [values]} of the unit file's settings."""
    found = {}
    with open(UNIT) as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith(("#", "[")):
                key, _, value = line.strip().partition("=")
                found.setdefault(key, []).append(value)
    return found


def test_daemonset():
    ds = daemonset()
    pod = ds["spec"]["template"]
    spec = pod["spec"]
    assert pod["metadata"]["labels"] == ds["spec"]["selector"]["matchLabels"]
    assert spec["hostPID"] is True
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert set(sc["capabilities"]["add"]) == CAPS and sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v.get("hostPath", {}).get("path") for v in spec["volumes"]}
    for path in ("/sys/kernel/btf", "/sys/kernel/tracing"):
        assert volumes[mounts[path]] == path
    assert c["command"] == ["bpfsight"]
    args = exporter_args([a.replace("$(POD_IP)", "10.1.2.3") for a in c["args"]])
    port = c["ports"][0]["containerPort"]
    assert args.listen == ("10.1.2.3", port)
    assert any(e["name"] == "POD_IP" and e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
               for e in c["env"])
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"] == "/healthz"


def test_systemd_unit():
    u = unit()
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        assert {c.replace("CAP_", "") for c in u[key][0].split()} == CAPS, key
    argv = shlex.split(u["ExecStart"][0])
    assert argv[0].endswith("/bpfsight")
    args = exporter_args([a for a in argv[1:] if not a.startswith("$")])
    assert args.listen == ("127.0.0.1", 9435)  # loopback unless told otherwise
    analyze = shutil.which("systemd-analyze")
    if analyze:  # the unit's syntax, with ExecStart pointing at this checkout's bpfsight
        with open(UNIT) as f:
            text = f.read().replace("/usr/local/bin/bpfsight",
                                    os.path.join(os.path.dirname(sys.executable), "bpfsight"))
        copy = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                            f"bpfsight-test-{os.getpid()}.service")
        with open(copy, "w") as f:
            f.write(text)
        try:
            res = subprocess.run([analyze, "verify", copy], capture_output=True, text=True)
        finally:
            os.unlink(copy)
        assert res.returncode == 0, res.stderr


@pytest.mark.bpf
def test_exporter_runs_with_only_the_deployed_capabilities():
    """As the DaemonSet and unit run it: uid 0 but only CAP_BPF, CAP_PERFMON and
    CAP_SYS_RESOURCE. Every collector must start and serve."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (util-linux)")
    bounding = "-all," + ",".join("+" + c.lower() for c in sorted(CAPS))
    proc = subprocess.Popen([setpriv, f"--bounding-set={bounding}", sys.executable, "-m",
                             "bpfsight", "exporter", "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        banner = proc.stdout.readline() if ready else ""
        m = re.search(r"\(([a-z,]+)\): serving (http://\S+)/metrics", banner)
        assert m, (banner, proc.poll())
        with open(f"/proc/{proc.pid}/status") as f:
            eff = int(next(ln.split()[1] for ln in f if ln.startswith("CapEff:")), 16)
        assert not eff & (1 << 21), "CAP_SYS_ADMIN was not dropped"
        time.sleep(1)
        with urllib.request.urlopen(m.group(2) + "/metrics", timeout=10) as resp:
            found = samples(resp.read().decode())
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    from bpfsight.exporter.collectors import COLLECTORS
    assert m.group(1).split(",") == [n for n, c in COLLECTORS.items() if c.default], err
    assert proc.returncode == 0, err
    assert "skipped" not in err and "Traceback" not in err, err
    assert total(found, "bpfsight_collector_errors_total") == 0
    assert total(found, "bpfsight_syscalls_total") > 0
