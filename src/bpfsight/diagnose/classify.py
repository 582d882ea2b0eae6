"""Name the resource a blocked thread was waiting for, from two things: where it blocked (its
kernel stack, the syscall in progress, the futex op and the iowait flag, taken when it was
switched out) and what woke it (a timer, a softirq and the TCP segment it carried, a thread of
the same process, another process: taken at sched_waking). The same rules serve intervals
captured by BPF and threads already blocked when diagnose started (/proc, no waker)."""
from collections import namedtuple

CAUSES = ("on_cpu", "runqueue", "disk", "network", "lock", "ipc", "memory", "sleep", "other")

# Where a thread blocked. Some sites name the resource whatever woke the thread (disk, memory,
# kernel locks, timed sleeps); the others are waits whose meaning depends on the waker: an
# epoll_wait ended by a reply from a peer is network, the same wait ended by a new request to a
# server is idle.
DECISIVE_SITES = ("disk", "memory", "lock", "sleep")

# frame-name prefixes, checked in this order (first match wins)
_FRAME_RULES = [
    ("memory", ("try_to_free_pages", "do_try_to_free_pages", "try_to_free_mem_cgroup_pages",
                "shrink_node", "shrink_lruvec", "mem_cgroup_handle_over_high",
                "__alloc_pages_slowpath", "out_of_memory", "mem_cgroup_oom",
                "__perform_reclaim", "reclaim_high", "compact_zone")),
    ("disk", ("io_schedule", "blk_mq_get_tag", "submit_bio_wait", "jbd2_log_wait_commit",
              "jbd2_complete_transaction", "folio_wait_writeback", "wait_on_page_writeback",
              "filemap_fdatawait", "file_write_and_wait_range", "blkdev_issue_flush",
              "ext4_sync_file", "xfs_file_fsync", "blk_execute_rq", "bio_await",
              "__blkdev_direct_IO", "iomap_dio_rw", "wbt_wait", "rq_qos_wait")),
    ("memory", ("handle_mm_fault", "do_user_addr_fault", "exc_page_fault", "do_swap_page",
                "swap_readpage", "filemap_fault")),
    ("lock", ("__mutex_lock", "mutex_lock", "rwsem_down_read_slowpath",
              "rwsem_down_write_slowpath", "__rt_mutex", "rt_mutex_slowlock",
              "percpu_rwsem_wait", "__down_read", "__down_write", "__down_common",
              "futex_lock_pi", "queued_spin_lock_slowpath", "osq_lock")),
    ("socket", ("sk_wait_data", "sk_stream_wait_memory", "sk_stream_wait_connect",
                "inet_csk_accept", "inet_csk_wait_for_connect", "inet_wait_for_connect",
                "tcp_recvmsg", "tcp_sendmsg", "udp_recvmsg", "__skb_wait_for_more_packets",
                "__skb_recv_datagram", "wait_for_tcp_memory", "sock_recvmsg",
                "sock_sendmsg", "__sys_accept", "do_accept", "mptcp_", "unix_stream_read",
                "unix_wait_for_peer", "unix_stream_data_wait")),
    ("poll", ("ep_poll", "do_epoll_wait", "do_sys_poll", "do_select", "core_sys_select")),
    # waiting for input on a pipe or terminal: idle, unless a process of ours writes it
    ("pipe", ("pipe_read", "pipe_write", "anon_pipe_read", "anon_pipe_write", "n_tty_read",
              "wait_for_partner")),
    ("sleep", ("do_nanosleep", "hrtimer_nanosleep", "do_wait", "kernel_wait4",
               "sigsuspend", "do_sigtimedwait", "sys_pause", "worker_thread",
               "smpboot_thread_fn", "kthreadd", "rcu_gp_kthread", "rcu_tasks",
               "schedule_timeout_idle", "kcompactd", "kswapd_try_to_sleep", "khugepaged_wait",
               "watchdog", "devtmpfsd", "io_wq_worker", "irq_thread", "ksoftirqd",
               "migration", "oom_reaper", "kauditd", "hwrng_fillfn", "usleep_range",
               "msleep", "do_signal_stop", "ptrace_stop")),
]

_FUTEX_LOCK_OPS = {0, 6, 13}   # FUTEX_WAIT (glibc mutexes), FUTEX_LOCK_PI, FUTEX_LOCK_PI2

IDLE_SYSCALLS = ("nanosleep", "clock_nanosleep", "epoll_wait", "epoll_pwait", "epoll_pwait2",
                 "poll", "ppoll", "select", "pselect6", "pause", "wait4", "waitid",
                 "rt_sigsuspend", "rt_sigtimedwait")
_POLL_SYSCALLS = ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select",
                  "pselect6")
_SOCKET_SYSCALLS = ("recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg",
                    "accept", "accept4", "connect")
_SYNC_SYSCALLS = ("fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "msync")

# What woke a thread (bpf/include/diagnose.h: struct waker).
WAKER_NONE, WAKER_TASK, WAKER_SOFTIRQ, WAKER_HARDIRQ, WAKER_TIMER = range(5)
SOCK_NONE, SOCK_DATA, SOCK_ACK, SOCK_ACCEPTED, SOCK_CONNECTED = range(5)
WF_HANDOFF, WF_SERVER, WF_KTHREAD = 1, 2, 4
SOFTIRQ_NAMES = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED",
                 "HRTIMER", "RCU")
_TIMER_SOFTIRQS = (1, 8)
_NET_SOFTIRQS = (2, 3)
_BLOCK_SOFTIRQ = 4

Waker = namedtuple("Waker", "type vec sock flags tgid")
NO_WAKER = Waker(WAKER_NONE, 0, 0, 0, 0)


def wait_site(frames, syscall_name=None, futex_op=0, iowait=False):
    """Where a thread blocked: 'disk', 'memory', 'lock', 'sleep' (decisive) or 'socket',
    'poll', 'pipe', 'futex', 'unknown' (the waker decides). frames: innermost first."""
    if iowait:
        return "disk"
    for site, names in _FRAME_RULES:
        # prefix, not substring: "do_wait" must not match "futex_do_wait"; a prefix still
        # matches the compiler's clones ("shrink_node.isra.0")
        if any(f.startswith(names) for f in frames):
            return site
    name = syscall_name or ""
    if name == "futex":
        return "lock" if (futex_op & 0x7F) in _FUTEX_LOCK_OPS else "futex"
    if name in _SOCKET_SYSCALLS:
        return "socket"
    if name in _POLL_SYSCALLS:
        return "poll"
    if name in IDLE_SYSCALLS or name == "io_getevents":
        return "sleep"
    if name in _SYNC_SYSCALLS:
        return "disk"
    return "unknown"


def classify_wait(site, waker=NO_WAKER, wakee_tgid=None, kthread=False):
    """The resource behind one blocked interval, from where it blocked and what woke it."""
    if site in DECISIVE_SITES:
        return site
    if kthread:
        return "sleep"  # a kernel thread waiting for work
    kind = waker.type
    if kind == WAKER_TIMER or (kind == WAKER_SOFTIRQ and waker.vec in _TIMER_SOFTIRQS):
        return "sleep"  # a timeout or a timer: the thread chose to wait this long
    if kind == WAKER_SOFTIRQ and waker.vec in _NET_SOFTIRQS:
        if waker.sock == SOCK_ACCEPTED or (waker.sock == SOCK_DATA and waker.flags & WF_SERVER):
            return "sleep"  # a new connection or a new request: a server waiting for work
        return "network"  # a reply from a peer, send space (an ACK), or a datagram
    if kind == WAKER_SOFTIRQ and waker.vec == _BLOCK_SOFTIRQ:
        return "disk"
    if kind == WAKER_TASK and not waker.flags & WF_KTHREAD and waker.tgid:
        if waker.tgid != wakee_tgid:
            return "ipc"  # another local process ended the wait: a pipe, a unix socket...
        if site == "futex":
            return "lock" if waker.flags & WF_HANDOFF else "sleep"  # work handed out
        if site in ("poll", "pipe"):
            return "sleep"  # an eventfd or pipe between its own threads: work handed out
    # no waker (the window ended first, or it blocked before the window), or one that says
    # nothing more: where it blocked decides
    return {"socket": "network", "poll": "sleep", "pipe": "sleep", "futex": "sleep"}.get(
        site, "other")


def classify_blocked(frames, syscall_name=None, futex_op=0, iowait=False, kthread=False,
                     waker=NO_WAKER, wakee_tgid=None):
    """The cause of one blocked interval. frames: kernel function names, innermost first."""
    return classify_wait(wait_site(frames, syscall_name, futex_op, iowait), waker, wakee_tgid,
                         kthread)


def describe_waker(waker, comm_of=None):
    """A few words on what ended a wait, for evidence: 'timer', 'softirq NET_RX (reply)',
    'pid 123 (redis-server)', 'a thread of the same process'."""
    kind = waker.type
    if kind == WAKER_TIMER:
        return "timer"
    if kind == WAKER_SOFTIRQ:
        name = SOFTIRQ_NAMES[waker.vec] if waker.vec < len(SOFTIRQ_NAMES) else str(waker.vec)
        what = {SOCK_DATA: "request" if waker.flags & WF_SERVER else "data from peer",
                SOCK_ACK: "ACK: send space", SOCK_ACCEPTED: "new connection",
                SOCK_CONNECTED: "connected"}.get(waker.sock)
        return f"softirq {name}" + (f" ({what})" if what else "")
    if kind == WAKER_HARDIRQ:
        return f"irq {waker.vec}"
    if kind == WAKER_TASK:
        if waker.flags & WF_KTHREAD:
            return "kernel thread" + (f" {comm_of(waker.tgid)}" if comm_of else "")
        return f"pid {waker.tgid}" + (f" ({comm_of(waker.tgid)})" if comm_of else "")
    return "none"
