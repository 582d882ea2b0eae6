// SPDX-License-Identifier: GPL-2.0
/* runqlat: time from a task becoming runnable (woken, or preempted while running) to it
 * running, as a log2 histogram.
 *
 * Where the kernel keeps schedstat's per-task sched_info (CONFIG_SCHED_INFO: /proc/PID/schedstat
 * exists), one tp_btf program on sched_switch does it all: between two switch-outs of a task
 * there is exactly one switch-in, and sched_info.run_delay grew by the wait before it (the
 * scheduler's own figure, with the part before a migration included). No wakeup hook and no
 * clock read; a clock read costs ~35 ns in a VM, twice per wait.
 * A task's baseline is its run_delay when we start: a task iterator (runqlat_baselines) reads
 * it for every task off the CPU once, after attaching; a task forked since has run_delay 0 at
 * birth; one running when we start takes it at its first switch-out. Taking it at the first
 * switch-in instead loses the part of that wait before a move to another CPU: the scheduler
 * adds it to run_delay at the move, before the task runs.
 *
 * Otherwise the BCC way: tp_btf programs stamp the wakeup in task storage (half the cost of a
 * hash map), and raw_tp twins with a pid-keyed hash are the last fallback.
 * Histograms: comm_hist.bpf.h, as cpudist's. */
#include "common.bpf.h"
#include "comm_hist.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0


struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} start_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} start_by_pid SEC(".maps");

/* run_delay + 1 at the task's last switch-out, or at its first switch-in since we started */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} seen_delay SEC(".maps");

/* --- tp_btf + sched_info: the scheduler's own run_delay --- */

/* CLOCK_MONOTONIC ns when the tool started: task_struct.start_time's clock */
const volatile __u64 targ_start_ns = 0;

/* t's run_delay when we started, where that is known now (see the head of this file) */
static __always_inline void take_baseline(struct task_struct *t, __u64 run_delay)
{
	__u64 *seen = bpf_task_storage_get(&seen_delay, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (seen && !*seen)
		*seen = (t->start_time >= targ_start_ns ? 0 : run_delay) + 1;
}

SEC("iter/task")
int runqlat_baselines(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;

	/* a task on a CPU now: its first switch-out, else a wait of 0 with no switch-in */
	if (t && t->pid && !t->on_cpu && task_selected(t))
		take_baseline(t, t->sched_info.run_delay);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(runqlat_delay, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	__u64 delay, *seen;

	/* next unseen (the iterator has not run yet, or missed it): the scheduler adds the wait
	 * now ending to run_delay after this tracepoint, so run_delay as it is now is the
	 * baseline, less any part of the wait added at a move to another CPU */
	if (next->pid && task_selected(next) &&
	    !bpf_task_storage_get(&seen_delay, next, 0, 0))
		take_baseline(next, next->sched_info.run_delay);
	if (!prev->pid)
		return 0;
	seen = bpf_task_storage_get(&seen_delay, prev, 0, 0);
	delay = prev->sched_info.run_delay;
	if (!seen || !*seen) {
		/* running when we started: exact now, and no wait of its lies in the window */
		if (task_selected(prev))
			take_baseline(prev, delay);
		return 0;
	}
	comm_hist_record(prev, delay - (*seen - 1));
	*seen = delay + 1;
	return 0;
}

/* --- tp_btf: wakeup time in task storage --- */

static __always_inline void mark_runnable(struct task_struct *t)
{
	__u64 *ts;

	if (!t->pid || !task_selected(t))
		return;
	ts = bpf_task_storage_get(&start_ts, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ts)
		*ts = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(runqlat_wakeup, struct task_struct *p)
{
	mark_runnable(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(runqlat_wakeup_new, struct task_struct *p)
{
	mark_runnable(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(runqlat_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 *ts;

	if (switch_state(preempt, prev) == TASK_RUNNING)
		mark_runnable(prev);
	if (!next->pid)
		return 0;
	ts = bpf_task_storage_get(&start_ts, next, 0, 0);
	if (!ts || !*ts)
		return 0;
	comm_hist_record(next, bpf_ktime_get_ns() - *ts);
	*ts = 0;
	return 0;
}

/* --- raw_tp fallback: pid-keyed hash --- */

static __always_inline void mark_runnable_raw(struct task_struct *t)
{
	__u32 pid = BPF_CORE_READ(t, pid);
	__u64 ts;

	if (!pid || !task_selected(t))
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start_by_pid, &pid, &ts, BPF_ANY);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(runqlat_wakeup_raw, struct task_struct *p)
{
	mark_runnable_raw(p);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(runqlat_wakeup_new_raw, struct task_struct *p)
{
	mark_runnable_raw(p);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(runqlat_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 pid = BPF_CORE_READ(next, pid);
	__u64 *ts;

	if (switch_state(preempt, prev) == TASK_RUNNING)
		mark_runnable_raw(prev);
	if (!pid)
		return 0;
	ts = bpf_map_lookup_elem(&start_by_pid, &pid);
	if (!ts)
		return 0;
	comm_hist_record(next, bpf_ktime_get_ns() - *ts);
	bpf_map_delete_elem(&start_by_pid, &pid);
	return 0;
}
