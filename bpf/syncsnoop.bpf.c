// SPDX-License-Identifier: GPL-2.0
/* syncsnoop: calls that flush data to disk, sync(2), fsync(2), fdatasync(2), msync(2),
 * sync_file_range(2) and syncfs(2), one record each at entry (libbpf-tools' syncsnoop; BCC's
 * traces sync() alone). */
#include "common.bpf.h"
#include "events.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct sync_event {
	__u64 ts_ns;
	__u32 pid;
	__u32 call;  /* index into bpfsight.tools.syncsnoop.CALLS */
	char comm[TASK_COMM_LEN];
};
EVENT_RECORD(struct sync_event);

static __always_inline void emit(__u32 call)
{
	struct sync_event *e;

	if (current_is_self() || !current_selected())
		return;
	e = RESERVE_STAMPED(struct sync_event);
	if (!e)
		return;
	e->call = call;
	submit_event(e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_enter_sync")
int syncsnoop_sync(void *ctx)
{
	emit(0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int syncsnoop_fsync(void *ctx)
{
	emit(1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int syncsnoop_fdatasync(void *ctx)
{
	emit(2);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_msync")
int syncsnoop_msync(void *ctx)
{
	emit(3);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sync_file_range")
int syncsnoop_sync_file_range(void *ctx)
{
	emit(4);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_syncfs")
int syncsnoop_syncfs(void *ctx)
{
	emit(5);
	return 0;
}
