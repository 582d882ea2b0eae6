"""The wait-for chain's rules (no BPF): where a chain through processes ends."""
from bpfsight.diagnose.graph import chain
from bpfsight.diagnose.states import Accounting

CLIENT, SERVER = 100, 200


def accounting(server_time):
    """A client that waited 2.3 s for the server (and slept 0.4 s), and the server's time."""
    acc = Accounting()
    acc.comms.update({CLIENT: "client", SERVER: "server"})
    acc.add(CLIENT, "network", 2.3, node=f"pid:{SERVER}")
    acc.add(CLIENT, "sleep", 0.4)
    for cause, seconds in server_time.items():
        acc.add(SERVER, cause, seconds)
    return acc


def test_a_busy_server_with_idle_helper_threads_is_followed():
    """The serving thread waited for a CPU 2.7 s of the 3 s; three helper threads slept all
    along (9 s). The server is what the client waited behind, not idle."""
    c = chain(accounting({"runqueue": 2.7, "on_cpu": 0.2, "sleep": 9.1}), CLIENT)
    assert [(s["pid"], s["cause"]) for s in c["steps"]] == [(CLIENT, "network"),
                                                            (SERVER, "runqueue")]
    assert c["knot"] == {"nodes": ["cpu"], "what": "runqueue"}


def test_a_server_idle_while_the_client_waited_is_the_knot():
    """A server that sleeps 50 ms per answer: its own work is a sliver of the client's wait."""
    c = chain(accounting({"on_cpu": 0.05, "sleep": 2.9}), CLIENT)
    assert [(s["pid"], s["cause"]) for s in c["steps"]] == [(CLIENT, "network")]
    assert c["knot"]["nodes"] == [f"pid:{SERVER}"] and c["knot"]["what"] == "sleep"
