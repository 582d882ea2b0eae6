#!/usr/bin/env python3
"""Not a test: BCC's own smoke test (iovisor/bcc tests/python/test_tools_smoke.py) run
against bpfsight, command line for command line, as a new user coming from BCC would type
them. A tool that runs for a duration must exit 0; one stopped by SIGINT after 5 s must exit
0 (timeout then says 124). A kernel-function spec (`__kmalloc`, `p::SyS_open`) must end in the
one-line kprobe message with exit 2. Tools bpfsight does not have are listed as missing.

    sudo .venv/bin/python bench/bcc_smoke.py
"""
import os
import subprocess
import sys

# (BCC command line without ".py", how it ends: "duration", "int" (SIGINT after 5 s), or
# "kprobe" (a kernel function: the clear message, exit 2))
SMOKE = [
    ("argdist -C 'p::SyS_open()' -n 1 -i 1", "kprobe"),
    ("bashreadline", "int"), ("biolatency 1 1", "duration"), ("biosnoop", "int"),
    ("biotop 1 1", "duration"), ("bitesize", "int"), ("bpflist", "duration"),
    ("btrfsdist 1 1", "duration"), ("btrfsslower", "int"), ("cachestat 1 1", "duration"),
    ("capable", "int"), ("cpudist 1 1", "duration"), ("cpuunclaimed 1 1", "duration"),
    ("dcsnoop", "int"), ("dcstat 1 1", "duration"), ("execsnoop", "int"),
    ("ext4dist 1 1", "duration"), ("ext4slower", "int"), ("filelife", "int"),
    ("fileslower", "int"), ("filetop 1 1", "duration"), ("funccount __kmalloc -i 1", "kprobe"),
    ("funclatency __kmalloc -i 1", "kprobe"), ("funcslower __kmalloc", "kprobe"),
    ("gethostlatency", "int"), ("hardirqs 1 1", "duration"), ("killsnoop", "int"),
    ("mdflush", "int"), ("memleak 1 1", "duration"), ("mountsnoop", "int"),
    ("offcputime 1", "duration"), ("offwaketime 1", "duration"), ("oomkill", "int"),
    ("opensnoop", "int"), ("pidpersec", "int"), ("profile 1", "duration"),
    ("runqlat 1 1", "duration"), ("runqlen 1 1", "duration"),
    ("slabratetop 1 1", "duration"), ("softirqs 1 1", "duration"), ("solisten", "int"),
    ("sslsniff", "int"), ("stackcount __kmalloc -i 1", "kprobe"), ("statsnoop", "int"),
    ("syncsnoop", "int"), ("syscount -i 1", "int"), ("tcpaccept", "int"),
    ("tcpconnect", "int"), ("tcpconnlat", "int"), ("tcplife", "int"), ("tcpretrans", "int"),
    ("tcptop 1 1", "duration"), ("tplist -p %d" % os.getpid(), "duration"),
    ("trace SyS_open", "kprobe"), ("vfscount", "int"), ("vfsstat 1 1", "duration"),
    ("wakeuptime 1", "duration"),
]


def main():
    from bpfsight.tools import REGISTRY
    names = {e.name for e in REGISTRY}
    results = {"ok": [], "kprobe message": [], "missing": [], "FAILED": []}
    for cmd, how in SMOKE:
        tool = cmd.split()[0]
        if tool not in names:
            results["missing"].append(tool)
            continue
        signal = "KILL" if how == "duration" else "INT"
        run = subprocess.run(f"timeout -s {signal} -k 5 {15 if how == 'duration' else 5} "
                             f"{sys.executable} -m bpfsight {cmd} > /dev/null",
                             shell=True, capture_output=True, text=True)
        err = run.stderr.strip().splitlines()
        if how == "kprobe":
            good = run.returncode == 2 and len(err) == 1 and "kprobe" in err[0]
            results["kprobe message" if good else "FAILED"].append(cmd)
        else:
            good = run.returncode == 0 or (how == "int" and run.returncode == 124)
            results["ok" if good else "FAILED"].append(cmd)
        if not good:
            print(f"FAILED {cmd}: rc {run.returncode}: {' | '.join(err[-3:])}")
    for what, items in results.items():
        print(f"{what} ({len(items)}): {', '.join(items)}")
    return 1 if results["FAILED"] else 0


if __name__ == "__main__":
    sys.exit(main())
