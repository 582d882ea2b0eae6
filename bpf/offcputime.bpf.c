// SPDX-License-Identifier: GPL-2.0
/* offcputime: time each thread spends switched out, summed in the kernel per (thread, kernel
 * stack, user stack, state it blocked in[, waker and its stacks]). The stacks are taken at
 * sched_switch while the blocking thread is still current; the time is added when it is
 * switched back in. tp_btf programs keep the block in task storage; raw_tp twins use a hash. */
#include "common.bpf.h"
#include "stacks.bpf.h"
#include "pyframes.bpf.h"
#include "group.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool user_threads_only = false;
const volatile bool kernel_threads_only = false;
const volatile bool user_stacks_only = false;
const volatile bool kernel_stacks_only = false;
const volatile __u64 min_block_ns = 1000;
const volatile __u64 max_block_ns = (__u64)-1;
const volatile __s64 state_filter = -1;  /* BCC's --state: a mask, 0 means "preempted" */
const volatile bool targ_wakers = false;
const volatile __u32 targ_tid = 0;
const volatile bool targ_python = false;  /* walk CPython frames of processes in py_procs */

/* One blocked period of one thread. */
struct block {
	__u64 ts;
	__s32 user_stack_id;
	__s32 kern_stack_id;
	__u32 state;
	struct waker waker;
	__u64 py_stack_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct block);
} blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct block);
} blocks_by_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);  /* --stack-storage-size */
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_val);
} counts SEC(".maps");

/* The exporter's: time per comm, cgroup and state (group.bpf.h) */
struct group_offcpu {
	__u64 total_ns;
	__u32 pid;
	__u32 pad;
};

GROUP_MAP(group_counts, struct group_offcpu);

static const struct block zero_block;
static const struct offcpu_val zero_val;
static const struct group_offcpu zero_group;

static __always_inline bool state_selected(long state)
{
	if (state_filter < 0)
		return true;
	return state_filter == 0 ? state == 0 : (state & state_filter) != 0;
}

static __always_inline bool thread_selected(struct task_struct *t, long state)
{
	__u32 tid = BPF_CORE_READ(t, pid);

	if (!tid || (targ_tid && tid != targ_tid))
		return false;
	if (user_threads_only && is_kthread(t))
		return false;
	if (kernel_threads_only && !is_kthread(t))
		return false;
	return state_selected(state) && task_selected(t);
}

/* prev is current here: its stacks are the ones it blocks with. */
static __always_inline void switch_out(void *ctx, struct task_struct *prev, long state,
				       struct block *b)
{
	__u32 gil = PY_GIL_UNKNOWN;  /* (not reported for blocked time yet) */

	b->ts = bpf_ktime_get_ns();
	b->state = state;
	b->kern_stack_id = b->user_stack_id = STACK_NONE;
	if (!user_stacks_only)
		b->kern_stack_id = get_stack(ctx, false);
	if (!kernel_stacks_only && !is_kthread(prev)) {
		b->user_stack_id = get_stack(ctx, true);
		note_process(BPF_CORE_READ(prev, tgid));
	}
	b->py_stack_id = targ_python && !kernel_stacks_only ?
		py_stack_of(BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid), &gil) : 0;
	/* no waker yet (a preempted thread never gets one): empty comm */
	__builtin_memset(&b->waker, 0, sizeof(b->waker));
	b->waker.kern_stack_id = b->waker.user_stack_id = STACK_NONE;
}

static __always_inline void switch_in(struct task_struct *next, struct block *b)
{
	struct offcpu_key key = {};
	struct offcpu_val *v;
	__u64 delta = bpf_ktime_get_ns() - b->ts;

	b->ts = 0;
	if (delta < min_block_ns || delta > max_block_ns)
		return;
	if (targ_by_group) {
		struct group_key gk;
		struct group_offcpu *g;

		group_key_of(next, b->state, &gk);
		g = lookup_or_try_init(&group_counts, &gk, &zero_group);
		if (g) {
			g->pid = BPF_CORE_READ(next, tgid);
			__sync_fetch_and_add(&g->total_ns, delta);
		}
		return;
	}
	key.pid = BPF_CORE_READ(next, pid);
	key.tgid = BPF_CORE_READ(next, tgid);
	key.user_stack_id = b->user_stack_id;
	key.kern_stack_id = b->kern_stack_id;
	key.state = b->state;
	key.waker = b->waker;
	key.py_stack_id = b->py_stack_id;
	bpf_probe_read_kernel_str(key.comm, sizeof(key.comm), next->comm);
	v = lookup_or_try_init(&counts, &key, &zero_val);
	if (!v) {
		count_error(ERR_COUNTS_FULL);
		return;
	}
	__sync_fetch_and_add(&v->total_ns, delta);
	__sync_fetch_and_add(&v->count, 1);
}

/* sched_waking runs in the waker's context (sched_wakeup may run on the wakee's CPU). */
static __always_inline void note_waker(void *ctx, struct block *b)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!b->ts)
		return;
	b->waker.pid = id >> 32;
	b->waker.kern_stack_id = b->waker.user_stack_id = STACK_NONE;
	if (!user_stacks_only)
		b->waker.kern_stack_id = get_stack(ctx, false);
	if (!kernel_stacks_only && (__u32)id &&
	    !is_kthread((struct task_struct *)bpf_get_current_task()))
		b->waker.user_stack_id = get_stack(ctx, true);
	bpf_get_current_comm(b->waker.comm, sizeof(b->waker.comm));
}

/* --- tp_btf: task storage --- */

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	long state = switch_state(preempt, prev);
	struct block *b;

	if (thread_selected(prev, state)) {
		b = bpf_task_storage_get(&blocks, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (b)
			switch_out(ctx, prev, state, b);
		else
			count_error(ERR_UNTRACKED);
	}
	b = bpf_task_storage_get(&blocks, next, 0, 0);
	if (b && b->ts)
		switch_in(next, b);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(offcpu_waking, struct task_struct *p)
{
	struct block *b;

	if (!targ_wakers)
		return 0;
	b = bpf_task_storage_get(&blocks, p, 0, 0);
	if (b)
		note_waker(ctx, b);
	return 0;
}

/* --- raw_tp fallback: tid-keyed hash --- */

SEC("raw_tp/sched_switch")
int BPF_PROG(offcpu_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	long state = switch_state(preempt, prev);
	__u32 tid = BPF_CORE_READ(prev, pid);
	struct block *b;

	if (thread_selected(prev, state)) {
		b = lookup_or_try_init(&blocks_by_tid, &tid, &zero_block);
		if (b)
			switch_out(ctx, prev, state, b);
		else
			count_error(ERR_UNTRACKED);
	}
	tid = BPF_CORE_READ(next, pid);
	b = bpf_map_lookup_elem(&blocks_by_tid, &tid);
	if (b && b->ts) {
		switch_in(next, b);
		bpf_map_delete_elem(&blocks_by_tid, &tid);
	}
	return 0;
}

SEC("raw_tp/sched_waking")
int BPF_PROG(offcpu_waking_raw, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	struct block *b;

	if (!targ_wakers)
		return 0;
	b = bpf_map_lookup_elem(&blocks_by_tid, &tid);
	if (b)
		note_waker(ctx, b);
	return 0;
}
