// SPDX-License-Identifier: GPL-2.0
/* killsnoop: signals sent with kill(2), tkill(2) and tgkill(2), with the sender, the target and
 * the result (BCC's killsnoop). The target and signal are kept at syscall entry in task storage,
 * the record written at exit, when the result is known. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "pending.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_failed = false;
const volatile __u32 targ_sig = 0;  /* -s: only this signal; 0 = every one */

struct kill_event {
	__u64 ts_ns;
	__u32 pid;
	__s32 tpid;  /* kill(2)'s pid argument (negative: a process group); tkill/tgkill: the tid */
	__u32 sig;
	__s32 ret;
	char comm[TASK_COMM_LEN];
	char call[8];  /* kill, tkill, tgkill */
};
EVENT_RECORD(struct kill_event);

struct pending_kill {
	bool active;
	__s32 tpid;
	__u32 sig;
	char call[8];
};

PENDING_MAP(struct pending_kill);

static __always_inline void kill_enter(__s32 tpid, __u32 sig, const char call[8])
{
	struct pending_kill *p;

	if (targ_sig && sig != targ_sig)
		return;
	p = pending_start(&pending);
	if (!p)
		return;
	p->tpid = tpid;
	p->sig = sig;
	__builtin_memcpy(p->call, call, sizeof(p->call));
}

static __always_inline void kill_exit(long ret)
{
	struct pending_kill *p = pending_take(&pending);
	struct kill_event *e;

	if (!p || (targ_failed && ret >= 0))
		return;
	e = RESERVE_STAMPED(struct kill_event);
	if (!e)
		return;
	e->tpid = p->tpid;
	e->sig = p->sig;
	e->ret = ret;
	__builtin_memcpy(e->call, p->call, sizeof(e->call));
	submit_event(e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_enter_kill")
int killsnoop_enter_kill(struct trace_event_raw_sys_enter *ctx)
{
	kill_enter(ctx->args[0], ctx->args[1], "kill");
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int killsnoop_enter_tkill(struct trace_event_raw_sys_enter *ctx)
{
	kill_enter(ctx->args[0], ctx->args[1], "tkill");
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int killsnoop_enter_tgkill(struct trace_event_raw_sys_enter *ctx)
{
	kill_enter(ctx->args[1], ctx->args[2], "tgkill");
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int killsnoop_exit_kill(struct trace_event_raw_sys_exit *ctx)
{
	kill_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int killsnoop_exit_tkill(struct trace_event_raw_sys_exit *ctx)
{
	kill_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int killsnoop_exit_tgkill(struct trace_event_raw_sys_exit *ctx)
{
	kill_exit(ctx->ret);
	return 0;
}
