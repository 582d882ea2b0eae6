/* From a file descriptor to the file behind it, for tools that hook read/write/fsync syscalls
 * (filetop, fileslower). Without kprobes on vfs_read/vfs_write there is no struct file * in
 * hand, so it is found the way the kernel finds it: current->files->fdt->fd[fd], read with
 * CO-RE so one object fits every kernel. */
#ifndef BPFSIGHT_FILES_BPF_H
#define BPFSIGHT_FILES_BPF_H

#include "common.bpf.h"

#define FILE_NAME_LEN 64	/* the dentry's own name; user space resolves the full path */

#define S_IFMT   0170000
#define S_IFREG  0100000

/* What identifies a file and what user space needs to name it. */
struct file_id {
	__u64 ino;
	__u32 dev;	/* the superblock's s_dev, kernel encoding (major << 20 | minor) */
	__u32 mode;	/* i_mode: type and permission bits */
};

/* The open file behind fd in the current task, or NULL. The fd may already be closed by
 * another thread when this runs at syscall exit: then NULL or another file, as the kernel
 * itself would see it now. */
static __always_inline struct file *current_fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = BPF_CORE_READ(task, files);
	struct file **table, *file = NULL;
	struct fdtable *fdt;

	if (!files || fd < 0)
		return NULL;
	fdt = BPF_CORE_READ(files, fdt);
	if (!fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	table = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &table[fd]))
		return NULL;
	return file;
}

/* Fill id from file's inode; false for a file without one. */
static __always_inline bool file_identify(struct file *file, struct file_id *id)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	if (!inode)
		return false;
	id->ino = BPF_CORE_READ(inode, i_ino);
	id->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	id->mode = BPF_CORE_READ(inode, i_mode);
	return true;
}

/* The dentry's own name (the last path component), as BCC's tools show it. */
static __always_inline void file_dname(struct file *file, char *name)
{
	const unsigned char *dname = BPF_CORE_READ(file, f_path.dentry, d_name.name);

	if (!dname || bpf_probe_read_kernel_str(name, FILE_NAME_LEN, dname) < 0)
		name[0] = 0;
}

/* Regular files only, unless all file types were asked for (-a). */
static __always_inline bool file_type_wanted(__u32 mode, bool all_types)
{
	return all_types || (mode & S_IFMT) == S_IFREG;
}

/* An fd syscall in flight (filetop, fileslower, fsdist): its fd, kind and, when timed, its
 * start, in task storage (no per-thread hash to clean up). */
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

static __always_inline void fd_op_start(int fd, __u32 op, bool timed)
{
	struct pending_io *io;

	if (current_is_self() || !current_selected())
		return;
	io = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!io)
		return;
	io->fd = fd;
	io->op = op;
	if (timed)  /* a constant at each call: the branch compiles away */
		io->ts = bpf_ktime_get_ns();
}

/* The current task's timed syscall, now taken (op 0 left behind); NULL if none. */
static __always_inline struct pending_io *fd_op_take(struct pending_io *copy)
{
	struct pending_io *io = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);

	if (!io || !io->op)
		return 0;
	*copy = *io;
	io->op = 0;
	return copy;
}

/* I/O kind, also the letter fileslower prints in its D column. */
#define IO_READ  'R'
#define IO_WRITE 'W'
#define IO_SYNC  'S'

/* One enter/exit program pair per syscall whose first argument is the fd. The including tool
 * defines fd_op_enter(fd, op) and fd_op_exit(ret); the syscall tracepoints are classic ones
 * (only they carry each syscall's arguments). */
#define FD_SYSCALL(sys, op)							\
SEC("tracepoint/syscalls/sys_enter_" #sys)					\
int sys##_enter(struct trace_event_raw_sys_enter *ctx)				\
{										\
	fd_op_enter((int)ctx->args[0], op);					\
	return 0;								\
}										\
SEC("tracepoint/syscalls/sys_exit_" #sys)					\
int sys##_exit(struct trace_event_raw_sys_exit *ctx)				\
{										\
	fd_op_exit(ctx->ret);							\
	return 0;								\
}

/* read/write and their positioned and vectored forms: everything that moves file data
 * through a user buffer. */
#define FD_RW_SYSCALLS()			\
	FD_SYSCALL(read, IO_READ)		\
	FD_SYSCALL(pread64, IO_READ)		\
	FD_SYSCALL(readv, IO_READ)		\
	FD_SYSCALL(preadv, IO_READ)		\
	FD_SYSCALL(preadv2, IO_READ)		\
	FD_SYSCALL(write, IO_WRITE)		\
	FD_SYSCALL(pwrite64, IO_WRITE)		\
	FD_SYSCALL(writev, IO_WRITE)		\
	FD_SYSCALL(pwritev, IO_WRITE)		\
	FD_SYSCALL(pwritev2, IO_WRITE)

#endif
