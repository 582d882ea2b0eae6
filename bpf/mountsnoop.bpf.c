// SPDX-License-Identifier: GPL-2.0
/* mountsnoop: mount(2) and umount(2) calls with their arguments and result (BCC's mountsnoop).
 * The argument pointers are kept at entry in task storage and the strings read at exit, when
 * the result is known. The new mount API (fsopen/fsmount/move_mount) is not traced. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "pending.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define CALL_MOUNT 0
#define CALL_UMOUNT 1

struct mount_event {
	__u64 ts_ns;
	__u64 flags;
	__u32 pid;
	__u32 tid;
	__s32 ret;
	__u32 call;
	char comm[TASK_COMM_LEN];
	char fstype[16];
	char source[64];
	char target[128];
	char data[64];
};
EVENT_RECORD(struct mount_event);

struct pending_mount {
	bool active;
	const char *source;
	const char *target;
	const char *fstype;
	const char *data;
	__u64 flags;
	__u32 call;
};

PENDING_MAP(struct pending_mount);

SEC("tracepoint/syscalls/sys_enter_mount")
int mountsnoop_enter_mount(struct trace_event_raw_sys_enter *ctx)
{
	struct pending_mount *p = pending_start(&pending);

	if (!p)
		return 0;
	p->source = (const char *)ctx->args[0];
	p->target = (const char *)ctx->args[1];
	p->fstype = (const char *)ctx->args[2];
	p->flags = ctx->args[3];
	p->data = (const char *)ctx->args[4];
	p->call = CALL_MOUNT;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_umount")
int mountsnoop_enter_umount(struct trace_event_raw_sys_enter *ctx)
{
	struct pending_mount *p = pending_start(&pending);

	if (!p)
		return 0;
	p->source = p->fstype = p->data = 0;
	p->target = (const char *)ctx->args[0];
	p->flags = ctx->args[1];
	p->call = CALL_UMOUNT;
	return 0;
}

static __always_inline void read_str(char *dst, __u32 size, const char *src)
{
	if (!src || bpf_probe_read_user_str(dst, size, src) < 0)
		dst[0] = 0;
}

static __always_inline void mount_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending_mount *p = pending_take(&pending);
	struct mount_event *e;

	if (!p)
		return;
	e = RESERVE_STAMPED(struct mount_event);
	if (!e)
		return;
	e->flags = p->flags;
	e->tid = (__u32)id;
	e->ret = ret;
	e->call = p->call;
	read_str(e->fstype, sizeof(e->fstype), p->fstype);
	read_str(e->source, sizeof(e->source), p->source);
	read_str(e->target, sizeof(e->target), p->target);
	/* mount data is a string for most file systems (binary for a few, e.g. nfs v4) */
	read_str(e->data, sizeof(e->data), p->data);
	submit_event(e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_exit_mount")
int mountsnoop_exit_mount(struct trace_event_raw_sys_exit *ctx)
{
	mount_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_umount")
int mountsnoop_exit_umount(struct trace_event_raw_sys_exit *ctx)
{
	mount_exit(ctx->ret);
	return 0;
}
