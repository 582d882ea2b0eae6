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

static __always_inline void fd_op_enter(int fd, __u32 op)
{
	fd_op_start(fd, op, true);
}

static __always_inline void fd_op_exit(long ret)
{
	struct pending_io taken, *io = fd_op_take(&taken);
	static const struct hist zero;
	struct file *file;
	struct hist *h;
	__u32 idx;
	__u64 delta;

	if (!io)
		return;
	delta = bpf_ktime_get_ns() - io->ts;
	idx = io->op == IO_READ ? FS_READ : io->op == IO_WRITE ? FS_WRITE :
	      io->op == IO_OPEN ? FS_OPEN : FS_FSYNC;
	file = current_fd_file(io->op == IO_OPEN ? (int)ret : io->fd);
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
