// SPDX-License-Identifier: GPL-2.0
/* cpudist: how long tasks run each time they get a CPU (or, with targ_offcpu, how long they
 * stay off it), as log2 histograms. Every slice counts, however it ends (preempted, blocked or
 * exiting); BCC counts on-CPU slices only when the task was preempted, which hides the time of
 * tasks that block. An on-CPU slice is the scheduler's own figure (stint_so_far); off-CPU slice
 * start times live in task storage (task_start.bpf.h). */
#include "common.bpf.h"
#include "comm_hist.bpf.h"
#include "task_start.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_offcpu = false;
/* user space: the kernel keeps sched_info (see stint_so_far), and when the tool started
 * (CLOCK_MONOTONIC): a slice under way then is counted from there */
const volatile bool sched_info_kept = false;
const volatile __u64 targ_since = 0;

/* The slice of t that ends now, given the start taken when it began (0: none); 0 when unknown.
 * On CPU, the scheduler's own figure for the stint comes first: a switch-in we did not see (as
 * happens here for about 1 slice in 100 of a preempted burner) loses nothing. */
static __always_inline __u64 slice_length(struct task_struct *t, __u64 start, __u64 now)
{
	__u64 ran = targ_offcpu ? STINT_UNKNOWN : stint_so_far(t, sched_info_kept);

	if (ran == STINT_UNKNOWN)
		return start ? now - start : 0;
	return ran < now - targ_since ? ran : now - targ_since;
}

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
	__u64 now = bpf_ktime_get_ns(), slice;

	if (timed(ends)) {
		slice = slice_length(ends, task_start_take(ends), now);
		if (slice)
			comm_hist_record(ends, slice);
	}
	if (timed(starts))
		task_start_set(starts, now);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(cpudist_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *ends = slice_ends(prev, next), *starts = slice_starts(prev, next);
	__u64 now = bpf_ktime_get_ns(), slice;

	if (timed(ends)) {
		slice = slice_length(ends, tid_start_take(BPF_CORE_READ(ends, pid)), now);
		if (slice)
			comm_hist_record(ends, slice);
	}
	if (timed(starts))
		tid_start_set(BPF_CORE_READ(starts, pid), now);
	return 0;
}
