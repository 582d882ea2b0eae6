"""tcpstates against loopback sessions that time their own steps (tests/tcpload.py): each
socket's state changes in TCP's order, at times inside the workload's own bounds for the calls
that cause them, with the time in each state consistent with those bounds."""
import pytest

from tcpload import free_port, sessions
from toolrun import assert_usage_error

from bpfsight.tool import Options
from bpfsight.tools.tcpstates import Tcpstates

pytestmark = pytest.mark.bpf

N = 3


def by_socket(recs):
    """{(socket address, n): its changes}: one socket's life ends at CLOSE, and the next one
    may be given the same memory (sessions run one after the other)."""
    out, lives = {}, {}
    for r in recs:
        key = (r["skaddr"], lives.get(r["skaddr"], 0))
        out.setdefault(key, []).append(r)
        if r["newstate"] == "CLOSE":
            lives[r["skaddr"]] = key[1] + 1
    return out


def test_client_states_at_the_workloads_own_times():
    port = free_port()
    recs, work, _ = sessions("tcpstates", "-D", port, n=N, port=port, by_pid=False)
    socks = by_socket(recs)
    assert len(socks) == N, recs
    for changes in socks.values():
        path = [(c["oldstate"], c["newstate"]) for c in changes]
        assert path[:3] == [("CLOSE", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED"),
                            ("ESTABLISHED", "FIN_WAIT1")], path
        assert path[-1][1] == "CLOSE" and all(c["rport"] == port for c in changes), path
        client = next(c["lport"] for c in changes if c["lport"])
        # [connect called, connect returned, shutdown called, EOF read], CLOCK_MONOTONIC ns
        t0, t1, t2, t3 = work["times"][str(client)]
        syn, est, fin, close = changes[0], changes[1], changes[2], changes[-1]
        assert t0 <= syn["ts_ns"] <= est["ts_ns"] <= t1, (changes, t0, t1)
        assert t2 <= fin["ts_ns"] <= close["ts_ns"] <= t3, (changes, t2, t3)
        # the time in each state is the time since the socket's previous change
        for before, after in zip(changes, changes[1:]):
            assert after["ms"] * 1e6 == pytest.approx(after["ts_ns"] - before["ts_ns"], abs=1)
        assert (t2 - t1) / 1e6 <= fin["ms"] <= (t3 - t0) / 1e6, (fin, t0, t1, t2, t3)


def test_server_states_listen_to_close():
    port = free_port()
    recs, work, _ = sessions("tcpstates", "-L", port, n=N, port=port, by_pid=False)
    listener = [r for r in recs if r["rport"] == 0]
    assert [(r["oldstate"], r["newstate"]) for r in listener] == [
        ("CLOSE", "LISTEN"), ("LISTEN", "CLOSE")], listener
    children = {k: v for k, v in by_socket(recs).items() if v[0]["rport"]}
    assert sorted(v[0]["rport"] for v in children.values()) == sorted(work["clients"])
    for changes in children.values():
        path = [(c["oldstate"], c["newstate"]) for c in changes]
        assert path == [("LISTEN", "SYN_RECV"), ("SYN_RECV", "ESTABLISHED"),
                        ("ESTABLISHED", "CLOSE_WAIT"), ("CLOSE_WAIT", "LAST_ACK"),
                        ("LAST_ACK", "CLOSE")], path
        t0, t1, t2, t3 = work["times"][str(changes[0]["rport"])]
        first, closing = work["served"][str(changes[0]["rport"])]
        assert t0 <= changes[1]["ts_ns"] <= first, changes  # established before data is read
        assert t2 <= changes[2]["ts_ns"], changes          # the client's FIN
        assert closing <= changes[3]["ts_ns"], changes     # our close() sent ours


def test_text_and_csv_lines():
    tool = Tcpstates()
    rec = {"skaddr": "ffff8881", "pid": 42, "comm": "curl", "ip": 4, "laddr": "127.0.0.1",
           "lport": 5000, "raddr": "127.0.0.1", "rport": 80, "oldstate": "SYN_SENT",
           "newstate": "ESTABLISHED", "ms": 0.0421, "ts_ns": 0}
    lines = []

    class Out:
        def text(self, line=""):
            lines.append(line)
    for kw in ({}, {"csv": True}):
        tool.render([rec], Options(tool, **kw), Out())
    assert lines[0].split() == ["ffff8881", "42", "curl", "127.0.0.1", "5000", "127.0.0.1",
                                "80", "SYN_SENT", "->", "ESTABLISHED", "0.042"], lines
    assert lines[1] == "ffff8881,42,curl,4,127.0.0.1,5000,127.0.0.1,80,SYN_SENT,ESTABLISHED,0.042"


@pytest.mark.parametrize("args", [["-L", "0"], ["-D", "http"], ["-4", "-6"], ["-p", "1"]])
def test_bad_arguments(args):
    assert_usage_error("tcpstates", *args)
