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
