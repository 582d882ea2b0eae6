// SPDX-License-Identifier: GPL-2.0
/* oomkill: each OOM-killer victim, with the task that triggered the kill. BCC uses a kprobe on
 * oom_kill_process; oom:mark_victim fires in the same call chain, in the context of the task
 * whose allocation failed (current), with the victim's pid, comm and memory. The classic
 * tracepoint is used rather than tp_btf because it already carries the victim's memory figures
 * (computed by the kernel from mm counters); OOM kills are rare, so its cost does not matter. */
#include "common.bpf.h"
#include "events.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* The ring's record, decoded by its BTF (EVENT_RECORD below). Memory figures are in kB. */
struct oom_event {
	__u32 tpid;		/* triggered by: the task whose allocation hit OOM */
	__u32 kpid;		/* the victim */
	__u32 uid;
	__s32 oom_score_adj;
	__u64 total_vm;
	__u64 anon_rss;
	__u64 file_rss;
	__u64 shmem_rss;
	__u64 pgtables;
	char tcomm[TASK_COMM_LEN];
	char kcomm[TASK_COMM_LEN];
};
EVENT_RECORD(struct oom_event);

SEC("tracepoint/oom/mark_victim")
int oomkill_mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	struct oom_event *e;
	__u32 comm_off;

	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;
	e->tpid = bpf_get_current_pid_tgid() >> 32;
	e->kpid = ctx->pid;
	e->total_vm = ctx->total_vm;
	e->anon_rss = ctx->anon_rss;
	e->file_rss = ctx->file_rss;
	e->shmem_rss = ctx->shmem_rss;
	/* added to the tracepoint later (5.19 and 6.0): CO-RE drops them on older kernels */
	if (bpf_core_field_exists(ctx->uid))
		e->uid = ctx->uid;
	if (bpf_core_field_exists(ctx->pgtables))
		e->pgtables = ctx->pgtables;
	if (bpf_core_field_exists(ctx->oom_score_adj))
		e->oom_score_adj = ctx->oom_score_adj;
	bpf_get_current_comm(e->tcomm, sizeof(e->tcomm));
	/* __data_loc: the low 16 bits are the string's offset in the record */
	comm_off = ctx->__data_loc_comm & 0xFFFF;
	bpf_probe_read_kernel_str(e->kcomm, sizeof(e->kcomm), (void *)ctx + comm_off);
	submit_event(e, sizeof(*e));
	return 0;
}
