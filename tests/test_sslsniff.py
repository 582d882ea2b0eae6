"""sslsniff against a TLS client and server on loopback in one Python process (OpenSSL through
the ssl module: SSL_write_ex/SSL_read_ex): the plaintext each side wrote and read appears
exactly, byte for byte, and cut short at --max-buffer-size with the loss counted."""
import hashlib
import json
import subprocess

import pytest

from helpers import Running, assert_released, bpf_objects_of
from toolrun import assert_usage_error
from workload import Gated

pytestmark = pytest.mark.bpf

WORK = """
import os, socket, ssl, threading, hashlib
cert, key = sys.argv[1], sys.argv[2]
first = b"hello sslsniff\\n" + bytes(range(256))
second = os.urandom(12000)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False
cctx.verify_mode = ssl.CERT_NONE
srv = socket.create_server(("127.0.0.1", 0))
tids = {}
def serve():
    tids["server"] = threading.get_native_id()
    conn, _ = srv.accept()
    with sctx.wrap_socket(conn, server_side=True) as s:
        got = b""
        while len(got) < len(first) + len(second):
            got += s.recv(65536)
        s.sendall(b"reply:" + hashlib.sha256(got).hexdigest().encode())
t = threading.Thread(target=serve); t.start()
with cctx.wrap_socket(socket.create_connection(srv.getsockname())) as c:
    c.sendall(first)
    c.sendall(second)
    reply = c.recv(100)
t.join()
result = f"{threading.get_native_id()} {tids['server']} {first.hex()} {second.hex()} {reply.hex()}"
"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{d}/key.pem",
                    "-out", f"{d}/cert.pem", "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return f"{d}/cert.pem", f"{d}/key.pem"


def sniff(certificate, *tool_args):
    with Gated.python(WORK, *certificate) as w:
        tool = Running("sslsniff", "-p", w.pid, "--json", *tool_args).wait_attached()
        held = bpf_objects_of(tool.proc.pid)
        client, server, first, second, reply = w.run()
        rc, out, err = tool.stop()
    assert rc == 0, err
    assert "Traceback" not in err
    assert_released(held)
    recs = [json.loads(line) for line in out.splitlines()]
    return recs, int(client), int(server), bytes.fromhex(first + second), bytes.fromhex(reply)


def stream(recs, tid, func):
    mine = [r for r in recs if r["tid"] == tid and r["func"] == func]
    return mine, b"".join(bytes.fromhex(r["data_hex"]) for r in mine)


def test_plaintext_both_ways_byte_for_byte(certificate):
    recs, client, server, sent, reply = sniff(certificate, "--max-buffer-size", "16384")
    assert reply == b"reply:" + hashlib.sha256(sent).hexdigest().encode()
    for tid, func, expected in ((client, "WRITE/SEND", sent), (server, "READ/RECV", sent),
                                (server, "WRITE/SEND", reply), (client, "READ/RECV", reply)):
        calls, data = stream(recs, tid, func)
        assert data == expected, (func, tid, len(data), len(expected))
        assert sum(r["len"] for r in calls) == len(expected)
        assert all(r["truncated"] == 0 and r["comm"] for r in calls)
    # each sendall() was one SSL_write_ex of the whole message
    writes, _ = stream(recs, client, "WRITE/SEND")
    assert [r["len"] for r in writes] == [271, 12000]
    # the text of the first write, as the terminal would show it
    assert writes[0]["data"].startswith("hello sslsniff\n")


def test_capture_cut_at_max_buffer_size(certificate):
    recs, client, server, sent, _ = sniff(certificate, "--max-buffer-size", "100")
    writes, data = stream(recs, client, "WRITE/SEND")
    assert [(r["len"], r["truncated"]) for r in writes] == [(271, 171), (12000, 11900)]
    assert data == sent[:100] + sent[271:371]


def test_bad_input():
    assert "at most" in assert_usage_error("sslsniff", "--max-buffer-size", "99999")
    assert "no process" in assert_usage_error("sslsniff", "-p", "4194303")
