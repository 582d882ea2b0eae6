// SPDX-License-Identifier: GPL-2.0
/* funcslower: calls of user functions slower than a threshold, with their arguments and return
 * value (BCC's funcslower, for user functions): a uprobe keeps the entry time and arguments by
 * thread, a uretprobe sends the call when it took min_ns or more. Each function's probes carry
 * its index as cookie. */
#include "common.bpf.h"
#include "events.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 min_ns = 1000000;

struct entry {
	__u64 ts;
	__u64 args[6];
	__u32 func;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);  /* tid: a call returns on its own thread (recursion: innermost) */
	__type(value, struct entry);
} entries SEC(".maps");

struct slow_call {
	__u64 ts_ns;
	__u64 lat_ns;
	__u64 retval;
	__u64 args[6];
	__u32 pid;
	__u32 tid;
	__u32 func;
	__u32 pad;
	char comm[TASK_COMM_LEN];
};
EVENT_RECORD(struct slow_call);

SEC("uprobe")
int funcslower_entry(struct pt_regs *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct entry e = {.ts = bpf_ktime_get_ns(), .func = bpf_get_attach_cookie(ctx)};

	if (current_is_self() || !current_selected())
		return 0;
	e.args[0] = PT_REGS_PARM1_CORE(ctx);
	e.args[1] = PT_REGS_PARM2_CORE(ctx);
	e.args[2] = PT_REGS_PARM3_CORE(ctx);
	e.args[3] = PT_REGS_PARM4_CORE(ctx);
	e.args[4] = PT_REGS_PARM5_CORE(ctx);
#if defined(__TARGET_ARCH_x86)
	e.args[5] = BPF_CORE_READ(ctx, r9);
#endif
	bpf_map_update_elem(&entries, &tid, &e, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int funcslower_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 tid = (__u32)id;
	struct entry *in = bpf_map_lookup_elem(&entries, &tid);
	struct slow_call *e;

	if (!in)
		return 0;
	if (now - in->ts >= min_ns && (e = reserve_event(sizeof(*e)))) {
		e->ts_ns = now;
		e->lat_ns = now - in->ts;
		e->retval = PT_REGS_RC_CORE(ctx);
		__builtin_memcpy(e->args, in->args, sizeof(e->args));
		e->pid = id >> 32;
		e->tid = tid;
		e->func = in->func;
		e->pad = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		submit_event(e, sizeof(*e));
	}
	bpf_map_delete_elem(&entries, &tid);
	return 0;
}
