// SPDX-License-Identifier: GPL-2.0
/* filetop: reads, writes and bytes per thread and file, summed in the kernel and read (and
 * reset) by user space each interval. BCC hooks vfs_read/vfs_write with kprobes and counts the
 * bytes requested; without kprobes we pair the read/write syscalls' enter and exit, which also
 * lets us count the bytes actually transferred. The fd is kept in task storage between the
 * two (no hash to clean up when a thread dies). */
#include "common.bpf.h"
#include "files.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_all_files = false;

struct file_key {
	__u64 ino;
	__u32 dev;
	__u32 tid;
};

struct file_stat {
	__u64 reads;
	__u64 writes;
	__u64 rbytes;
	__u64 wbytes;
	__u32 pid;
	__s32 fd;	/* the last fd it was used through: user space resolves the full path */
	__u32 mode;
	__u32 pad;
	char comm[TASK_COMM_LEN];
	char name[FILE_NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct file_key);
	__type(value, struct file_stat);
} stats SEC(".maps");

static __always_inline void fd_op_enter(int fd, __u32 op)
{
	fd_op_start(fd, op, false);
}

static __always_inline void count(struct file_stat *s, __u32 op, long bytes)
{
	/* The key holds the thread id, and a thread is on one CPU at a time: no atomics. */
	if (op == IO_READ) {
		s->reads++;
		s->rbytes += bytes;
	} else {
		s->writes++;
		s->wbytes += bytes;
	}
}

/* First I/O of this thread on this file: name it once. Pipes and sockets have no dentry name
 * (BCC skips them even with -a); user space names them from /proc ("pipe:[1234]"). */
static __always_inline struct file_stat *new_stat(struct file_key *key, struct file *file,
						  __u32 mode, __u64 id)
{
	struct file_stat init = {};

	file_dname(file, init.name);
	init.pid = id >> 32;
	init.mode = mode;
	bpf_get_current_comm(init.comm, sizeof(init.comm));
	bpf_map_update_elem(&stats, key, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stats, key);
}

static __always_inline void fd_op_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct file_key key = {};
	struct file_id fid = {};
	struct pending_io taken, *io = fd_op_take(&taken);
	struct file_stat *s;
	struct file *file;
	__u32 op;
	int fd;

	if (!io)
		return;
	op = io->op;
	fd = io->fd;
	if (ret < 0)
		return;
	file = current_fd_file(fd);
	if (!file || !file_identify(file, &fid) || !file_type_wanted(fid.mode, targ_all_files))
		return;
	key.ino = fid.ino;
	key.dev = fid.dev;
	key.tid = (__u32)id;
	s = bpf_map_lookup_elem(&stats, &key);
	if (!s)
		s = new_stat(&key, file, fid.mode, id);
	if (!s)
		return;
	s->fd = fd;
	count(s, op, ret);
}

FD_RW_SYSCALLS()
