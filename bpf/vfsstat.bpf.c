// SPDX-License-Identifier: GPL-2.0
/* vfsstat: file-system calls per second by family. BCC counts vfs_read/vfs_write/vfs_fsync/
 * vfs_open/vfs_create with kprobes; without kprobes we count the syscalls that lead there,
 * which is an approximation (reads of pipes and sockets are counted; page-cache I/O done by
 * the kernel itself, io_uring and nfsd are not; CREATE counts opens that ask for O_CREAT, not
 * files actually created). Each syscall has its own tracepoint, so unrelated syscalls cost
 * nothing, unlike one program on raw_syscalls:sys_enter that would run for every syscall. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define O_CREAT 0100

/* The order of BCC's columns; bpfsight.tools.vfsstat.COLUMNS follows it. */
enum stat_type { S_READ, S_WRITE, S_FSYNC, S_OPEN, S_CREATE, S_MAXSTAT };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAXSTAT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Counters only grow (user space reports differences): nothing is lost to a reset race. */
static __always_inline void bump(__u32 type)
{
	__u64 *n;

	if (current_is_self() || !current_selected())
		return;
	n = bpf_map_lookup_elem(&stats, &type);
	if (n)
		*n += 1;
}

static __always_inline void bump_open(__u64 flags)
{
	bump(S_OPEN);
	if (flags & O_CREAT)
		bump(S_CREATE);
}

#define COUNT_SYSCALL(sys, type)				\
SEC("tracepoint/syscalls/sys_enter_" #sys)			\
int vfsstat_##sys(struct trace_event_raw_sys_enter *ctx)	\
{								\
	bump(type);						\
	return 0;						\
}

COUNT_SYSCALL(read, S_READ)
COUNT_SYSCALL(pread64, S_READ)
COUNT_SYSCALL(readv, S_READ)
COUNT_SYSCALL(preadv, S_READ)
COUNT_SYSCALL(preadv2, S_READ)
COUNT_SYSCALL(write, S_WRITE)
COUNT_SYSCALL(pwrite64, S_WRITE)
COUNT_SYSCALL(writev, S_WRITE)
COUNT_SYSCALL(pwritev, S_WRITE)
COUNT_SYSCALL(pwritev2, S_WRITE)
COUNT_SYSCALL(fsync, S_FSYNC)
COUNT_SYSCALL(fdatasync, S_FSYNC)
COUNT_SYSCALL(open_by_handle_at, S_OPEN)

SEC("tracepoint/syscalls/sys_enter_open")
int vfsstat_open(struct trace_event_raw_sys_enter *ctx)
{
	bump_open(ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int vfsstat_openat(struct trace_event_raw_sys_enter *ctx)
{
	bump_open(ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int vfsstat_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	bump_open(how.flags);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_creat")
int vfsstat_creat(struct trace_event_raw_sys_enter *ctx)
{
	bump_open(O_CREAT);
	return 0;
}
