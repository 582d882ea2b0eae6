// SPDX-License-Identifier: GPL-2.0
/* fsdist: latency of reads, writes, opens and fsyncs on one file-system type, as log2
 * histograms per operation (BCC's ext4dist/xfsdist/btrfsdist, which kprobe the file system's
 * own functions). Without kprobes the syscalls are timed from enter to exit and kept when the
 * file they worked on lives on a superblock of the chosen magic (ext4: 0xEF53): syscall time,
 * which adds the syscall's own microseconds to the file system's. An open that fails has no
 * file to tell its file system by: not counted. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "files.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define IO_OPEN 'O'

const volatile __u64 targ_magic = 0xEF53;
const volatile bool targ_ms = false;

enum fs_op { FS_READ, FS_WRITE, FS_OPEN, FS_FSYNC, FS_OPS };

/* a hash, not an array: user space reads and deletes each interval's histograms atomically */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FS_OPS);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct pending_io {
	__u64 ts;
	__s32 fd;
	__u32 op;	/* 0: no syscall of ours in flight */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_io);
} pending SEC(".maps");

static __always_inline void fd_op_enter(int fd, __u32 op)
{
	struct pending_io *io;

	if (current_is_self() || !current_selected())
		return;
	io = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (io) {
		io->fd = fd;
		io->op = op;
		io->ts = bpf_ktime_get_ns();
	}
}

static __always_inline void fd_op_exit(long ret)
{
	struct pending_io *io = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
	static const struct hist zero;
	struct file *file;
	struct hist *h;
	__u32 idx;
	__u64 delta;

	if (!io || !io->op)
		return;
	delta = bpf_ktime_get_ns() - io->ts;
	idx = io->op == IO_READ ? FS_READ : io->op == IO_WRITE ? FS_WRITE :
	      io->op == IO_OPEN ? FS_OPEN : FS_FSYNC;
	file = current_fd_file(io->op == IO_OPEN ? (int)ret : io->fd);
	io->op = 0;
	if (!file || BPF_CORE_READ(file, f_inode, i_sb, s_magic) != targ_magic ||
	    !file_type_wanted(BPF_CORE_READ(file, f_inode, i_mode), false))
		return;
	h = lookup_or_try_init(&hists, &idx, &zero);
	if (h)
		hist_add(h, targ_ms ? delta / 1000000 : delta / 1000);
}

FD_RW_SYSCALLS()
FD_SYSCALL(fsync, IO_SYNC)
FD_SYSCALL(fdatasync, IO_SYNC)

SEC("tracepoint/syscalls/sys_enter_openat")
int openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	fd_op_enter(-1, IO_OPEN);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	fd_op_exit(ctx->ret);
	return 0;
}
