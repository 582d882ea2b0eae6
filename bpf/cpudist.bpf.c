// SPDX-License-Identifier: GPL-2.0
/* cpudist: how long tasks run each time they get a CPU (or, with targ_offcpu, how long they
 * stay off it), as log2 histograms. Every slice counts, however it ends (preempted, blocked or
 * exiting); BCC counts on-CPU slices only when the task was preempted, which hides the time of
 * tasks that block. Slice start times live in task storage (task_start.bpf.h). */
#include "common.bpf.h"
#include "comm_hist.bpf.h"
#include "task_start.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_offcpu = false;

/* Idle tasks (pid 0) and tasks outside -p/-c are not timed. */
static __always_inline bool timed(struct task_struct *t)
{
	return BPF_CORE_READ(t, pid) && task_selected(t);
}

/* On-CPU: a slice runs from next's switch-in to its switch-out as prev; off-CPU: the reverse. */
static __always_inline struct task_struct *slice_ends(struct task_struct *prev,
						      struct task_struct *next)
{
	return targ_offcpu ? next : prev;
}

static __always_inline struct task_struct *slice_starts(struct task_struct *prev,
							struct task_struct *next)
{
	return targ_offcpu ? prev : next;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(cpudist_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *ends = slice_ends(prev, next), *starts = slice_starts(prev, next);
	__u64 now = bpf_ktime_get_ns(), start;

	if (timed(ends)) {
		start = task_start_take(ends);
		if (start)
			comm_hist_record(ends, now - start);
	}
	if (timed(starts))
		task_start_set(starts, now);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(cpudist_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *ends = slice_ends(prev, next), *starts = slice_starts(prev, next);
	__u64 now = bpf_ktime_get_ns(), start;

	if (timed(ends)) {
		start = tid_start_take(BPF_CORE_READ(ends, pid));
		if (start)
			comm_hist_record(ends, now - start);
	}
	if (timed(starts))
		tid_start_set(BPF_CORE_READ(starts, pid), now);
	return 0;
}
