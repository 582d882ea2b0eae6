// SPDX-License-Identifier: GPL-2.0
/* statsnoop: stat-family calls (stat, lstat, fstatat, statx, statfs) with the path and result
 * (BCC's statsnoop). The path pointer is kept at entry in task storage and read at exit, when
 * the result is known, as opensnoop does. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "pending.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PATH_LEN 256

const volatile bool targ_failed = false;

struct stat_event {
	__u64 ts_ns;
	__u32 pid;
	__s32 ret;
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN];
};
EVENT_RECORD(struct stat_event);

struct pending_stat {
	bool active;
	const char *path;
};

PENDING_MAP(struct pending_stat);

static __always_inline void stat_enter(const char *path)
{
	struct pending_stat *p = pending_start(&pending);

	if (p)
		p->path = path;
}

static __always_inline void stat_exit(long ret)
{
	struct pending_stat *p = pending_take(&pending);
	struct stat_event *e;

	if (!p || (targ_failed && ret >= 0))
		return;
	e = RESERVE_STAMPED(struct stat_event);
	if (!e)
		return;
	e->ret = ret;
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), p->path) < 0)
		e->path[0] = 0;
	submit_event(e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_enter_statfs")
int statsnoop_enter_statfs(struct trace_event_raw_sys_enter *ctx)
{
	stat_enter((const char *)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_newstat")
int statsnoop_enter_newstat(struct trace_event_raw_sys_enter *ctx)
{
	stat_enter((const char *)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_newlstat")
int statsnoop_enter_newlstat(struct trace_event_raw_sys_enter *ctx)
{
	stat_enter((const char *)ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_newfstatat")
int statsnoop_enter_newfstatat(struct trace_event_raw_sys_enter *ctx)
{
	stat_enter((const char *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_statx")
int statsnoop_enter_statx(struct trace_event_raw_sys_enter *ctx)
{
	stat_enter((const char *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_statfs")
int statsnoop_exit_statfs(struct trace_event_raw_sys_exit *ctx)
{
	stat_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_newstat")
int statsnoop_exit_newstat(struct trace_event_raw_sys_exit *ctx)
{
	stat_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_newlstat")
int statsnoop_exit_newlstat(struct trace_event_raw_sys_exit *ctx)
{
	stat_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_newfstatat")
int statsnoop_exit_newfstatat(struct trace_event_raw_sys_exit *ctx)
{
	stat_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_statx")
int statsnoop_exit_statx(struct trace_event_raw_sys_exit *ctx)
{
	stat_exit(ctx->ret);
	return 0;
}
