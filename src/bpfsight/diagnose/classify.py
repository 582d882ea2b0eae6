"""Name the resource a blocked thread was waiting for, from what the kernel showed when it
blocked: its kernel stack, the syscall in progress, the futex op and the iowait flag. The same
rules serve stacks captured by BPF and threads already blocked when diagnose started (/proc)."""

CAUSES = ("on_cpu", "runqueue", "disk", "network", "lock", "memory", "sleep", "other")

# frame-name fragments, checked in this order (first match wins)
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
    ("network", ("sk_wait_data", "sk_stream_wait_memory", "sk_stream_wait_connect",
                 "inet_csk_accept", "inet_csk_wait_for_connect", "inet_wait_for_connect",
                 "tcp_recvmsg", "tcp_sendmsg", "udp_recvmsg", "__skb_wait_for_more_packets",
                 "__skb_recv_datagram", "wait_for_tcp_memory", "sock_recvmsg",
                 "sock_sendmsg", "__sys_accept", "do_accept", "mptcp_")),
    ("sleep", ("do_nanosleep", "hrtimer_nanosleep", "ep_poll", "do_epoll_wait",
               "do_sys_poll", "do_select", "core_sys_select", "do_wait", "kernel_wait4",
               "sigsuspend", "do_sigtimedwait", "sys_pause", "worker_thread",
               "smpboot_thread_fn", "kthreadd", "rcu_gp_kthread", "rcu_tasks",
               "schedule_timeout_idle", "kcompactd", "kswapd_try_to_sleep", "khugepaged_wait",
               "watchdog", "devtmpfsd", "io_wq_worker", "irq_thread", "ksoftirqd",
               "migration", "oom_reaper", "kauditd", "hwrng_fillfn", "usleep_range",
               "msleep", "do_signal_stop", "ptrace_stop",
               # waiting for input on a pipe or terminal: idle until someone writes
               "pipe_read", "pipe_write", "anon_pipe_read", "anon_pipe_write", "n_tty_read",
               "wait_for_partner")),
]

_FUTEX_LOCK_OPS = {0, 6, 13}   # FUTEX_WAIT (glibc mutexes), FUTEX_LOCK_PI, FUTEX_LOCK_PI2
_FUTEX_WAIT_BITSET = 9         # glibc condition variables and semaphores: waiting for work


IDLE_SYSCALLS = ("nanosleep", "clock_nanosleep", "epoll_wait", "epoll_pwait", "epoll_pwait2",
                 "poll", "ppoll", "select", "pselect6", "pause", "wait4", "waitid",
                 "rt_sigsuspend", "rt_sigtimedwait")


def _syscall_family(name):
    if name in ("recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "accept",
                "accept4", "connect"):
        return "network"
    if name in IDLE_SYSCALLS or name == "io_getevents":
        return "sleep"
    if name in ("fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "msync"):
        return "disk"
    return None


def classify_blocked(frames, syscall_name=None, futex_op=0, iowait=False, kthread=False):
    """The cause of one blocked interval. frames: kernel function names, innermost first."""
    if iowait:
        return "disk"
    for cause, names in _FRAME_RULES:
        # prefix, not substring: "do_wait" must not match "futex_do_wait"; a prefix still
        # matches the compiler's clones ("shrink_node.isra.0")
        if any(f.startswith(names) for f in frames):
            return cause
    if syscall_name == "futex":
        op = futex_op & 0x7F  # without FUTEX_PRIVATE_FLAG / CLOCK_REALTIME
        if op in _FUTEX_LOCK_OPS:
            return "lock"
        return "sleep"
    family = _syscall_family(syscall_name or "")
    if family:
        return family
    if kthread:
        return "sleep"  # a kernel thread waiting for work
    return "other"
