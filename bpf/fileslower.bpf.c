// SPDX-License-Identifier: GPL-2.0
/* fileslower: file reads, writes and fsyncs slower than a threshold, with the file's name.
 * BCC times __vfs_read/__vfs_write with kprobes; without kprobes we time the syscalls from
 * enter to exit (start time and fd in task storage) and look the file up from the fd only for
 * the slow ones, so fast I/O costs two timestamps and no file walk. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "files.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 min_ns = 10000000;
const volatile bool targ_all_files = false;
const volatile __u64 targ_magic = 0;	/* fsslower/ext4slower: one file-system type; 0 any */

/* The ring's record, decoded by its BTF (EVENT_RECORD below). */
struct slow_event {
	__u64 delta_ns;
	__s64 ret;
	__u64 ino;
	__u32 dev;
	__u32 mode;
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u32 op;
	char comm[TASK_COMM_LEN];
	char name[FILE_NAME_LEN];
};
EVENT_RECORD(struct slow_event);

static __always_inline void fd_op_enter(int fd, __u32 op)
{
	fd_op_start(fd, op, true);
}

static __always_inline void fd_op_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct file_id fid = {};
	struct pending_io taken, *io = fd_op_take(&taken);
	struct slow_event *e;
	struct file *file;
	__u64 delta;
	__u32 op;
	int fd;

	if (!io)
		return;
	delta = bpf_ktime_get_ns() - io->ts;
	op = io->op;
	fd = io->fd;
	if (delta < min_ns)
		return;
	file = current_fd_file(fd);
	if (!file || !file_identify(file, &fid) || !file_type_wanted(fid.mode, targ_all_files))
		return;
	if (targ_magic && BPF_CORE_READ(file, f_inode, i_sb, s_magic) != targ_magic)
		return;
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	e->delta_ns = delta;
	e->ret = ret;
	e->ino = fid.ino;
	e->dev = fid.dev;
	e->mode = fid.mode;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	e->op = op;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	file_dname(file, e->name);
	submit_event(e, sizeof(*e));
}

FD_RW_SYSCALLS()
FD_SYSCALL(fsync, IO_SYNC)
FD_SYSCALL(fdatasync, IO_SYNC)
