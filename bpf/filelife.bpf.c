// SPDX-License-Identifier: GPL-2.0
/* filelife: files created and deleted while tracing, with their age (BCC's filelife).
 *
 * Without kprobes on vfs_create/vfs_unlink there is no dentry in hand at either end, so a
 * file is known by the name it was created and deleted under: the directory the path is
 * relative to (its inode: the opener's cwd or dirfd; none for an absolute path) and the path
 * as the program passed it. Creation is an open/openat/openat2/creat that returned a file the
 * kernel marked FMODE_CREATED (an O_CREAT open of an existing file is not a creation);
 * deletion an unlink/unlinkat that succeeded. A file deleted under another name than it was
 * created with (an absolute path for a relative one, a rename between) is not matched. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "files.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PATH_LEN 128
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_CREAT 0100
#define FMODE_CREATED (1 << 20)

struct name_key {
	__u64 dir_ino;	/* 0 for an absolute path */
	__u32 dir_dev;
	__u32 pad;
	char path[PATH_LEN];
};

struct created {
	__u64 ts_ns;
	__u64 ino;
	__u32 dev;
	__u32 pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct name_key);
	__type(value, struct created);
} files SEC(".maps");

struct life_event {
	__u64 ts_ns;
	__u64 age_ns;
	__u64 ino;
	__u32 pid;
	__u32 creator;	/* the process that created it */
	__u32 dev;
	__u32 pad;
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN];
};
EVENT_RECORD(struct life_event);

struct pending_name {
	bool active;
	struct name_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_name);
} names SEC(".maps");

/* Keep the name of the file an open or unlink is about: its base directory and path. */
static __always_inline void name_enter(int dfd, const char *path)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pending_name *p;
	struct inode *dir = NULL;
	struct file *f;

	if (current_is_self() || !current_selected())
		return;
	p = bpf_task_storage_get(&names, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return;
	__builtin_memset(&p->key, 0, sizeof(p->key));
	if (bpf_probe_read_user_str(p->key.path, sizeof(p->key.path), path) <= 0)
		return;
	if (p->key.path[0] != '/') {
		if (dfd == AT_FDCWD) {
			dir = BPF_CORE_READ(task, fs, pwd.dentry, d_inode);
		} else {
			f = current_fd_file(dfd);
			dir = f ? BPF_CORE_READ(f, f_inode) : NULL;
		}
		if (!dir)
			return;
		p->key.dir_ino = BPF_CORE_READ(dir, i_ino);
		p->key.dir_dev = BPF_CORE_READ(dir, i_sb, s_dev);
	}
	p->active = true;
}

static __always_inline struct pending_name *name_exit(long ret)
{
	struct pending_name *p = bpf_task_storage_get(&names, bpf_get_current_task_btf(), 0, 0);

	if (!p || !p->active)
		return NULL;
	p->active = false;
	return ret >= 0 ? p : NULL;
}

static __always_inline void open_enter(int dfd, const char *path, __u64 flags)
{
	if (flags & O_CREAT)
		name_enter(dfd, path);
}

static __always_inline void open_exit(long fd)
{
	struct pending_name *p = name_exit(fd);
	struct created c = {};
	struct file *file;
	struct file_id id;

	if (!p)
		return;
	file = current_fd_file(fd);
	if (!file || !(BPF_CORE_READ(file, f_mode) & FMODE_CREATED) || !file_identify(file, &id))
		return;
	c.ts_ns = bpf_ktime_get_ns();
	c.ino = id.ino;
	c.dev = id.dev;
	c.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_map_update_elem(&files, &p->key, &c, BPF_ANY);
}

static __always_inline void unlink_exit(long ret)
{
	struct pending_name *p = name_exit(ret);
	struct life_event *e;
	struct created *c;

	if (!p || ret != 0)
		return;
	c = bpf_map_lookup_elem(&files, &p->key);
	if (!c)
		return;
	e = RESERVE_STAMPED(struct life_event);
	if (e) {
		e->age_ns = e->ts_ns - c->ts_ns;
		e->ino = c->ino;
		e->dev = c->dev;
		e->creator = c->pid;
		__builtin_memcpy(e->path, p->key.path, sizeof(e->path));
		submit_event(e, sizeof(*e));
	}
	bpf_map_delete_elem(&files, &p->key);
}

SEC("tracepoint/syscalls/sys_enter_open")
int filelife_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	open_enter(AT_FDCWD, (const char *)ctx->args[0], ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int filelife_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	open_enter(ctx->args[0], (const char *)ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int filelife_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	open_enter(ctx->args[0], (const char *)ctx->args[1], how.flags);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_creat")
int filelife_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	name_enter(AT_FDCWD, (const char *)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int filelife_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int filelife_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int filelife_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_creat")
int filelife_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int filelife_enter_unlink(struct trace_event_raw_sys_enter *ctx)
{
	name_enter(AT_FDCWD, (const char *)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int filelife_enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	if (!(ctx->args[2] & AT_REMOVEDIR))
		name_enter(ctx->args[0], (const char *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_unlink")
int filelife_exit_unlink(struct trace_event_raw_sys_exit *ctx)
{
	unlink_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int filelife_exit_unlinkat(struct trace_event_raw_sys_exit *ctx)
{
	unlink_exit(ctx->ret);
	return 0;
}
