/* What every bpfsight program includes: kernel types, libbpf helpers, and the target filter
 * that user space sets before load (pid and cgroup filters run in the kernel). */
#ifndef BPFSIGHT_COMMON_BPF_H
#define BPFSIGHT_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define TASK_COMM_LEN 16

/* A tp_btf program NAME on tracepoint EVENT and its raw_tp twin NAME_raw, from one body, with
 * BPF_PROG's arguments (and ctx). User space loads the first this kernel supports
 * (bpfsight.tool.select_hooks); the body reads through pointers with BPF_CORE_READ, which
 * raw_tp needs.
 *   BTF_TP(block_rq_issue, biolat_issue, struct request *rq) { rq_start(rq, true); return 0; }
 */
#define ___BTF_TP_PROG(sec, prog, name, args...)				\
SEC(sec)									\
int prog(unsigned long long *ctx)						\
{										\
	_Pragma("GCC diagnostic push")						\
	_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")			\
	return ____##name(___bpf_ctx_cast(args));				\
	_Pragma("GCC diagnostic pop")						\
}

#define BTF_TP(event, name, args...)						\
static __always_inline int ____##name(unsigned long long *ctx, ##args);	\
___BTF_TP_PROG("tp_btf/" #event, name, name, ##args)				\
___BTF_TP_PROG("raw_tp/" #event, name##_raw, name, ##args)			\
static __always_inline int ____##name(unsigned long long *ctx, ##args)

/* Set by bpfsight.bpf before load; 0 means "no filter". */
const volatile __u32 targ_tgid = 0;
const volatile __u64 targ_cgid = 0;     /* cgroup v2 id (inode of its directory) */
const volatile __u32 targ_cglevel = 0;  /* its depth below the cgroup v2 root */
const volatile __u32 self_tgid = 0;     /* bpfsight itself: snoops never report their reader */

/* True when task t is in the target cgroup or one of its descendants. */
static __always_inline bool task_in_cgroup(struct task_struct *t)
{
	struct cgroup *cgrp, *anc;
	int level;

	cgrp = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	if (!cgrp)
		return false;
	level = BPF_CORE_READ(cgrp, level);
	if (level < (int)targ_cglevel)
		return false;
	anc = BPF_CORE_READ(cgrp, ancestors[targ_cglevel]);
	return anc && BPF_CORE_READ(anc, kn, id) == targ_cgid;
}

static __always_inline bool task_selected(struct task_struct *t)
{
	if (targ_tgid && BPF_CORE_READ(t, tgid) != targ_tgid)
		return false;
	if (targ_cgid && !task_in_cgroup(t))
		return false;
	return true;
}

static __always_inline bool current_selected(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return false;
	if (targ_cgid && !task_in_cgroup((struct task_struct *)bpf_get_current_task()))
		return false;
	return true;
}

static __always_inline bool current_is_self(void)
{
	return self_tgid && (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

/* task_struct.state was renamed __state in 5.14; read whichever this kernel has. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* The same for a BTF-typed task (tp_btf arguments): a direct load, not a probe-read helper
 * call, where the kernel has __state (a context switch reads it on every run). */
static __always_inline long task_state_btf(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* The state a task leaves its CPU in, as sched_switch reports it (prev_state): a preempted
 * task is runnable (0, TASK_RUNNING) even when it had already set a sleeping state on its way
 * to block (prepare_to_wait, then preempted before schedule()); its __state says asleep. */
static __always_inline long switch_state(bool preempt, struct task_struct *prev)
{
	return preempt ? 0 : task_state(prev);
}

static __always_inline long switch_state_btf(bool preempt, struct task_struct *prev)
{
	return preempt ? 0 : task_state_btf(prev);
}

#define SCHED_NORMAL 0
#define SCHED_BATCH 3
#define SCHED_IDLE 5
#define STINT_UNKNOWN (~0ULL)

/* How long t has been on CPU in its current stint, by the scheduler's own clocks, so a tool
 * needs no start of its own (a switch-in a program did not see loses nothing). With
 * sched_info kept (CONFIG_SCHED_INFO, and counted: bpfsight.cpustat.sched_info_kept), the
 * stint began at last_arrival on t's run queue's clock, for any class (the run queue is
 * reached through the task's group entity, set for every class; a remote run queue's clock
 * may lag by a tick, which only shortens the figure). Otherwise the fair class marks a
 * stint's start in prev_sum_exec_runtime when it picks the task, and its run time since is
 * the stint; other classes (real-time, deadline) leave that mark older: STINT_UNKNOWN. */
static __always_inline __u64 stint_so_far(struct task_struct *t, bool sched_info)
{
	unsigned int policy = BPF_CORE_READ(t, policy);
	struct rq *rq;

	if (sched_info && bpf_core_field_exists(struct cfs_rq, rq)) {
		rq = BPF_CORE_READ(t, se.cfs_rq, rq);
		if (rq)
			return BPF_CORE_READ(rq, clock) - BPF_CORE_READ(t, sched_info.last_arrival);
	}
	if (policy == SCHED_NORMAL || policy == SCHED_BATCH || policy == SCHED_IDLE)
		return BPF_CORE_READ(t, se.sum_exec_runtime) -
		       BPF_CORE_READ(t, se.prev_sum_exec_runtime);
	return STINT_UNKNOWN;
}

/* How long t, being switched in now (at sched_switch, before the scheduler's own bookkeeping
 * of the switch), waited in the run queue: its run queue's clock less sched_info.last_queued,
 * the moment it was queued; STINT_UNKNOWN without sched_info. */
static __always_inline __u64 queued_so_far(struct task_struct *t, bool sched_info)
{
	__u64 queued;
	struct rq *rq;

	if (!sched_info || !bpf_core_field_exists(struct cfs_rq, rq))
		return STINT_UNKNOWN;
	queued = BPF_CORE_READ(t, sched_info.last_queued);
	rq = BPF_CORE_READ(t, se.cfs_rq, rq);
	if (!queued || !rq)
		return STINT_UNKNOWN;
	return BPF_CORE_READ(rq, clock) - queued;
}

#endif
