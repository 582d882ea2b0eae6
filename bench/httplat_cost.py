#!/usr/bin/env python3
"""Benchmark (not a test): what `httplat` costs an HTTP server, from its throughput at
saturation and its CPU per request, with the cost scaled to 10k requests/s.

The server is Debian's nginx (one process, no master, pinned to CPU 0), answering 204 on
/api/N over keep-alive connections; the load is wrk (one thread, 32 connections, pinned to
CPU 1) for --seconds per run. Variants alternate within each round:
  * none;
  * `httplat -p NGINX` (the server's side only);
  * `httplat` host-wide (nginx's side and wrk's client side: two requests per request).
Per variant (medians over the rounds):
  * requests/s that wrk completed, and the change against none;
  * nginx's CPU µs per request (utime + stime, /proc/PID/stat): the BPF programs run in its
    syscalls, so their cost is inside this figure;
  * BPF ns per request: the programs' run time as the kernel counts it (--stats), over
    requests; and records per request sent to user space;
  * httplat's own CPU µs per request (the process's utime + stime over the run);
  * at 10k requests/s: BPF and httplat's CPU as a share of one CPU.

    sudo .venv/bin/python bench/httplat_cost.py [--seconds 8] [--rounds 3]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{ listen 127.0.0.1:{port}; location /api/ {{ return 204; }} }}
}}
"""
VARIANTS = {"none": None, "httplat -p nginx": "pid", "httplat host-wide": []}
PACE_SCRIPT = os.path.join(tempfile.gettempdir(), "bpfsight-httplat-pace.lua")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(d):
    port = free_port()
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port))
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(["taskset", "-c", "0", exe, "-c", f"{d}/nginx.conf", "-p", d])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nginx did not start")


def start_httplat(variant, nginx_pid):
    target = ["-p", str(nginx_pid)] if variant == "pid" else variant
    proc = subprocess.Popen([sys.executable, "-m", "bpfsight", "httplat", *target, "--json",
                             "--stats", "3600", "1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stderr.readline()
    if "Tracing" not in line:
        raise SystemExit(f"httplat did not start: {line}{proc.stderr.read()}")
    return proc


def stop_httplat(proc):
    """(BPF run time ns, records sent to user space) of the run."""
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    stats = next(json.loads(ln)["stats"] for ln in err.splitlines()
                 if ln.startswith("{") and '"stats"' in ln)
    bpf_ns = sum(p["run_time_ns"] for p in stats["programs"])
    return bpf_ns, stats


def wrk_ms(text, label):
    """A latency figure of wrk's --latency output, in ms."""
    value, unit = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]


def one_run(variant, nginx, port, seconds, paced):
    """paced: 10 connections, each waiting 1 ms after every answer (wrk's delay()): about
    10k requests/s; otherwise 32 connections as fast as nginx answers."""
    tool = start_httplat(variant, nginx.pid) if variant is not None else None
    load = ["-c10", "-s", PACE_SCRIPT] if paced else ["-c32"]
    n0, t0 = cpu_seconds(nginx.pid), cpu_seconds(tool.pid) if tool else 0
    w0 = time.monotonic()
    res = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", *load, "--latency",
                          f"-d{seconds}s", f"http://127.0.0.1:{port}/api/1"],
                         capture_output=True, text=True, check=True)
    wall = time.monotonic() - w0
    n1, t1 = cpu_seconds(nginx.pid), cpu_seconds(tool.pid) if tool else 0
    total = int(re.search(r"(\d+) requests in", res.stdout).group(1))
    out = {"rps": total / seconds, "nginx_us": (n1 - n0) / total * 1e6,
           "tool_us": (t1 - t0) / total * 1e6, "tool_cpu": (t1 - t0) / wall,
           "p50_ms": wrk_ms(res.stdout, "50%"), "p99_ms": wrk_ms(res.stdout, "99%")}
    if tool:
        bpf_ns, stats = stop_httplat(tool)
        out["bpf_ns"] = bpf_ns / total
        out["records"] = sum(r["records"] for r in stats["rings"]) / total
        out["drops"] = sum(r["drops"] for r in stats["rings"])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with open(PACE_SCRIPT, "w") as f:
        f.write("function delay()\n  return 1\nend\n")
    with tempfile.TemporaryDirectory() as d:
        nginx, port = start_nginx(d)
        try:
            runs = {(name, paced): [] for paced in (True, False) for name in VARIANTS}
            for _ in range(args.rounds):
                for (name, paced), rs in runs.items():
                    rs.append(one_run(VARIANTS[name], nginx, port, args.seconds, paced))
        finally:
            nginx.kill()
            nginx.wait()
    med = {key: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for key, rs in runs.items()}
    print(f"nginx answering 204 on loopback, pinned to CPU 0; wrk on CPU 1; {args.seconds} s "
          f"per run, {args.rounds} rounds (medians)\n")
    print("Paced: 10 connections, 1 ms between a connection's answer and its next request.\n")
    print("| variant | requests/s | wrk p50 ms | wrk p99 ms | nginx CPU µs/req | BPF ns/req "
          "| BPF % of a CPU | httplat % of a CPU | records/req | dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        m = med[name, True]
        bpf = m.get("bpf_ns", 0)
        print(f"| {name} | {m['rps']:,.0f} | {m['p50_ms']:.3f} | {m['p99_ms']:.3f} | "
              f"{m['nginx_us']:.1f} | {bpf:,.0f} | {bpf * m['rps'] / 1e9 * 100:.2f} | "
              f"{m['tool_cpu'] * 100:.1f} | {m.get('records', 0):.2f} | "
              f"{m.get('drops', 0):.0f} |")
    base = med["none", False]["rps"]
    print("\nSaturated: 32 connections as fast as nginx answers.\n")
    print("| variant | requests/s | change % | nginx CPU µs/req | BPF ns/req | httplat CPU "
          "µs/req | records/req | dropped |")
    print("|---|---|---|---|---|---|---|---|")
    for name in VARIANTS:
        m = med[name, False]
        print(f"| {name} | {m['rps']:,.0f} | {(m['rps'] / base - 1) * 100:+.1f} | "
              f"{m['nginx_us']:.1f} | {m.get('bpf_ns', 0):,.0f} | {m['tool_us']:.2f} | "
              f"{m.get('records', 0):.2f} | {m.get('drops', 0):.0f} |")


if __name__ == "__main__":
    main()
