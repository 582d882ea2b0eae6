import json
import re
import shutil
import subprocess

import pytest

from helpers import run_bpfsight
from workload import compile_c

# A program with two USDT probes written as sys/sdt.h writes them (no systemtap headers
# needed): a global label marks each probe's nop so `nm` tells where the probe must be.
SOURCE = r"""
#include <stdio.h>

unsigned short bpfsight_tick_semaphore __attribute__((section(".probes"), used));

#define PROBE(site, provider, name, sem, args, ...)                                 \
	__asm__ __volatile__(".globl " site "\n" site ":\n990: nop\n"                  \
		".pushsection .note.stapsdt,\"?\",\"note\"\n.balign 4\n"                 \
		".4byte 992f-991f, 994f-993f, 3\n991: .asciz \"stapsdt\"\n992: .balign 4\n" \
		"993: .8byte 990b\n.8byte _.stapsdt.base\n.8byte " sem "\n"               \
		".asciz \"" provider "\"\n.asciz \"" name "\"\n.asciz \"" args "\"\n"     \
		"994: .balign 4\n.popsection\n"                                          \
		".ifndef _.stapsdt.base\n"                                               \
		".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"  \
		".weak _.stapsdt.base\n.hidden _.stapsdt.base\n"                          \
		"_.stapsdt.base: .space 1\n.size _.stapsdt.base, 1\n.popsection\n.endif\n" \
		:: __VA_ARGS__)

int main(int argc, char **argv)
{
	if (argc > 1)  /* stay alive (mapped) until stdin closes */
		while (getchar() != EOF)
			;
	PROBE("tick_site", "bpfsight_test", "tick", "bpfsight_tick_semaphore", "-4@%0", "n"(42));
	PROBE("plain_site", "bpfsight_test", "plain", "0", "");
	return 0;
}
"""


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return compile_c(SOURCE, tmp_path_factory.mktemp("usdt"))


def symbols(path):
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    return {name: int(addr, 16) for addr, _, name in (l.split() for l in out.splitlines()
                                                       if len(l.split()) == 3)}


def probes(*argv):
    res = run_bpfsight("usdt", "--json", *argv)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_lists_exactly_the_compiled_probes(binary):
    syms = symbols(binary)
    found = sorted(probes("-l", binary), key=lambda p: p["name"])
    assert [(p["provider"], p["name"]) for p in found] == [("bpfsight_test", "plain"),
                                                            ("bpfsight_test", "tick")]
    plain, tick = found
    assert tick["location"] == syms["tick_site"]
    assert plain["location"] == syms["plain_site"]
    assert tick["semaphore"] == syms["bpfsight_tick_semaphore"] and plain["semaphore"] == 0
    assert tick["args"] == ["-4@$42"] and plain["args"] == []


def test_text_layout_and_filter(binary):
    res = run_bpfsight("usdt", "-l", binary, "*:tick")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == binary
    assert lines[1].split() == ["PROVIDER", "NAME", "LOCATION", "SEMAPHORE", "ARGS"]
    assert lines[2].split()[:2] == ["bpfsight_test", "tick"] and len(lines) == 3


def readelf_probes(path):
    """(provider, name, location, semaphore, args) of each note, as binutils' readelf reads them."""
    text = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    pat = re.compile(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: "
                     r"(0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\s+Arguments: ?([^\n]*)")
    return sorted((m[0], m[1], int(m[2], 16), int(m[4], 16), m[5].strip())
                  for m in pat.findall(text))


def real_binaries():
    """Debian's python3.11 and libstdc++ carry USDT notes."""
    found = []
    for name in ("/usr/bin/python3.11", "stdc++"):
        try:
            found.append(next(p["binary"] for p in probes("-l", name)))
        except (StopIteration, AssertionError):
            continue
    return found


def test_real_binaries_match_readelf():
    paths = [p for p in real_binaries() if shutil.which("readelf")]
    if not paths:
        pytest.skip("no binary with USDT notes on this machine")
    for path in paths:
        ours = sorted((p["provider"], p["name"], p["location"], p["semaphore"], " ".join(p["args"]))
                      for p in probes("-l", path))
        assert ours and ours == readelf_probes(path), path


def test_process_mode_finds_probes_of_mapped_files(binary):
    proc = subprocess.Popen([binary, "wait"], stdin=subprocess.PIPE)
    try:
        found = probes("-p", proc.pid, "bpfsight_test:*")
    finally:
        proc.stdin.close()
        proc.wait()
    assert sorted(p["name"] for p in found) == ["plain", "tick"]
    assert {p["binary"] for p in found} == {binary}


@pytest.mark.parametrize("argv", [[], ["-l", "/no/such/file"], ["-l", "/etc/passwd"],
                                  ["-p", "999999999"]])
def test_bad_arguments_exit_2_with_one_line(argv):
    res = run_bpfsight("usdt", *argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
