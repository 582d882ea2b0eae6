"""Blocking-cause rules (no BPF): the kernel stacks and syscalls real waits show."""
from bpfsight.diagnose.classify import classify_blocked


def test_iowait_is_disk():
    assert classify_blocked(["io_schedule", "folio_wait_bit"], "read", iowait=True) == "disk"


def test_journal_commit_wait_is_disk():
    assert classify_blocked(["jbd2_log_wait_commit", "ext4_sync_file"], "fsync") == "disk"


def test_glibc_mutex_is_lock_and_condvar_is_sleep():
    frames = ["futex_do_wait", "__futex_wait", "futex_wait"]
    assert classify_blocked(frames, "futex", futex_op=0x80) == "lock"        # WAIT|PRIVATE
    assert classify_blocked(frames, "futex", futex_op=0x89) == "sleep"       # WAIT_BITSET


def test_socket_waits_are_network():
    assert classify_blocked(["wait_woken", "sk_wait_data", "tcp_recvmsg_locked"],
                            "recvfrom") == "network"
    assert classify_blocked(["wait_woken", "sk_stream_wait_memory"], "sendto") == "network"


def test_idle_waits_are_sleep():
    assert classify_blocked(["do_nanosleep", "hrtimer_nanosleep"], "clock_nanosleep") == "sleep"
    assert classify_blocked(["ep_poll", "do_epoll_wait"], "epoll_wait") == "sleep"
    assert classify_blocked(["anon_pipe_read", "vfs_read"], "read") == "sleep"
    assert classify_blocked([], None, kthread=True) == "sleep"


def test_reclaim_is_memory_and_prefix_not_substring():
    assert classify_blocked(["shrink_node.isra.0", "do_try_to_free_pages"], None) == "memory"
    assert classify_blocked(["kernel_wait4", "do_wait"], "wait4") == "sleep"
    assert classify_blocked(["rwsem_down_write_slowpath", "down_write"], "mmap") == "lock"


def test_unknown_is_other():
    assert classify_blocked(["some_driver_wait"], "ioctl") == "other"


# --- what ended the wait decides the sites that do not name a resource by themselves ---

from bpfsight.diagnose.classify import (SOCK_ACCEPTED, SOCK_ACK, SOCK_DATA, WAKER_SOFTIRQ,  # noqa: E402
                                        WAKER_TASK, WAKER_TIMER, WF_HANDOFF, WF_KTHREAD,
                                        WF_SERVER, Waker, classify_wait, describe_waker)

NET_RX = 3


def test_event_loop_waits_by_waker():
    assert classify_wait("poll", Waker(WAKER_SOFTIRQ, NET_RX, SOCK_ACK, 0, 0)) == "network"
    assert classify_wait("poll", Waker(WAKER_SOFTIRQ, NET_RX, SOCK_DATA, 0, 0)) == "network"
    # a request to a server, or a new connection: waiting for work
    assert classify_wait("poll", Waker(WAKER_SOFTIRQ, NET_RX, SOCK_DATA, WF_SERVER, 0)) == "sleep"
    assert classify_wait("poll", Waker(WAKER_SOFTIRQ, NET_RX, SOCK_ACCEPTED, 0, 0)) == "sleep"
    assert classify_wait("socket", Waker(WAKER_SOFTIRQ, NET_RX, SOCK_DATA, WF_SERVER, 0)) == "sleep"
    assert classify_wait("poll", Waker(WAKER_TIMER, 0, 0, 0, 0)) == "sleep"
    assert classify_wait("poll") == "sleep"  # no waker seen: where it blocked decides


def test_futex_waits_by_waker():
    sibling = Waker(WAKER_TASK, 0, 0, 0, 10)
    assert classify_wait("futex", sibling._replace(flags=WF_HANDOFF), wakee_tgid=10) == "lock"
    assert classify_wait("futex", sibling, wakee_tgid=10) == "sleep"   # work handed out
    assert classify_wait("futex", sibling, wakee_tgid=11) == "ipc"     # another process
    assert classify_wait("lock", sibling, wakee_tgid=10) == "lock"     # a mutex, by its op


def test_pipes_and_processes_by_waker():
    other = Waker(WAKER_TASK, 0, 0, 0, 20)
    assert classify_wait("pipe", other, wakee_tgid=10) == "ipc"
    assert classify_wait("pipe", other._replace(tgid=10), wakee_tgid=10) == "sleep"
    assert classify_wait("pipe", other._replace(flags=WF_KTHREAD), wakee_tgid=10) == "sleep"
    assert classify_wait("disk", other, wakee_tgid=10) == "disk"       # decisive sites stay
    assert classify_wait("sleep", other, wakee_tgid=10) == "sleep"


def test_waker_descriptions():
    assert describe_waker(Waker(WAKER_SOFTIRQ, NET_RX, SOCK_ACK, 0, 0)) == \
        "softirq NET_RX (ACK: send space)"
    assert describe_waker(Waker(WAKER_TASK, 0, 0, 0, 7), lambda p: "gzip") == "pid 7 (gzip)"
    assert describe_waker(Waker(WAKER_TIMER, 0, 0, 0, 0)) == "timer"
