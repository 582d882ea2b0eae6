// SPDX-License-Identifier: GPL-2.0
/* opensnoop: every open/openat/openat2/creat with its path, flags and result. The arguments
 * are kept at syscall entry (in task storage: no per-thread hash to clean up), the record is
 * written at exit, when the fd or error is known. The path is read from the caller's memory at
 * exit, as BCC does; io_uring opens never pass through these syscalls and are not seen. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "pending.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define INVALID_UID ((__u32)-1)
#define PATH_LEN 256
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000

const volatile __u32 targ_tid = 0;
const volatile __u32 targ_uid = INVALID_UID;
const volatile __u32 targ_flags = 0;	/* -f: only opens with any of these flags */
const volatile bool targ_failed = false;

/* The ring's record, decoded by its BTF (EVENT_RECORD below). */
struct open_event {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 ret;
	__u32 flags;
	__u32 mode;
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN];
};
EVENT_RECORD(struct open_event);

struct pending_open {
	bool active;
	const char *path;
	__u32 flags;
	__u32 mode;
};

PENDING_MAP(struct pending_open);

static __always_inline bool wanted(__u32 flags)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (current_is_self() || !current_selected())
		return false;
	if (targ_tid && (__u32)id != targ_tid)
		return false;
	if (targ_uid != INVALID_UID && (__u32)bpf_get_current_uid_gid() != targ_uid)
		return false;
	return !targ_flags || (flags & targ_flags);
}

static __always_inline void open_enter(const char *path, __u32 flags, __u32 mode)
{
	struct pending_open *p;

	if (!wanted(flags))
		return;
	p = pending_start(&pending);
	if (!p)
		return;
	p->path = path;
	p->flags = flags;
	p->mode = mode;
}

static __always_inline void open_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending_open *p = pending_take(&pending);
	struct open_event *e;

	if (!p || (targ_failed && ret >= 0))
		return;
	e = RESERVE_STAMPED(struct open_event);
	if (!e)
		return;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ret = ret;
	e->flags = p->flags;
	e->mode = p->mode;
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), p->path) < 0)
		e->path[0] = 0;
	submit_event(e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_enter_open")
int opensnoop_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	open_enter((const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int opensnoop_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	open_enter((const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int opensnoop_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	open_enter((const char *)ctx->args[1], how.flags, how.mode);
	return 0;
}

/* creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode). */
SEC("tracepoint/syscalls/sys_enter_creat")
int opensnoop_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	open_enter((const char *)ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC, ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int opensnoop_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int opensnoop_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int opensnoop_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_creat")
int opensnoop_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}
