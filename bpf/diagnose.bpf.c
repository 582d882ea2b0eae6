// SPDX-License-Identifier: GPL-2.0
/* diagnose: where the target's threads spend their time. Every sched_switch/sched_wakeup of a
 * selected thread closes the interval it was in (on CPU, waiting in the run queue, or blocked)
 * and adds it to `acct`, keyed by what it was doing; a blocked interval carries the kernel
 * stack, the syscall in progress and the iowait flag from the moment it blocked, so user space
 * can name the resource (disk, network, lock, memory, sleep). Nothing runs on syscalls. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "diagnose.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0
#define TASK_UNINTERRUPTIBLE 2
#define TASK_DEAD 0x80

/* CLOCK_MONOTONIC at the start of the window: a thread's time before its first event is
 * counted from here, so every thread covers the same window. */
const volatile __u64 targ_start_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, struct acct_key);
	__type(value, struct acct_val);
} acct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct prewindow);
} prewindow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 64 * sizeof(__u64));
} stacks SEC(".maps");

/* Syscalls whose waits are idle by nature (nanosleep, epoll_wait, poll, ...): the syscall
 * alone names the cause, so the kernel stack (the costliest step, ~1 us) is not collected.
 * Filled by user space before attach: index = syscall number, value 1 = skip the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} idle_syscalls SEC(".maps");

#define FUTEX_WAIT_BITSET 9
/* Walking the kernel stack is ~0.8 us, most of a switch's cost. A thread that blocks again in
 * the same syscall on the same fd waits in the same place, so its last stack is reused; the
 * stack is read anew every STACK_REFRESH blocks to catch a change. */
#define STACK_REFRESH 64

/* Run-queue latency of the selected threads (usecs), for the CPU panel. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} runq_hist SEC(".maps");

/* Intervals that could not be recorded because a map was full: shown, never silent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static const struct acct_val zero_val;

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

static __always_inline void account(__u32 tgid, __u32 kind, struct block_cause *cause, __u64 ns)
{
	struct acct_key key = { .tgid = tgid, .kind = kind };
	struct acct_val *v;

	if (kind == KIND_BLOCKED && cause)
		key.cause = *cause;
	v = lookup_or_try_init(&acct, &key, &zero_val);
	if (!v) {
		count_lost();
		return;
	}
	__sync_fetch_and_add(&v->ns, ns);
	__sync_fetch_and_add(&v->count, 1);
}

static __always_inline void runq_done(__u64 ns)
{
	__u32 zero = 0;
	struct hist *h = bpf_map_lookup_elem(&runq_hist, &zero);

	if (h)
		hist_add(h, ns / 1000);
}

/* Move thread tid to a new state. st is its current entry (updated in place: no map update
 * on the hot path) or NULL for a thread seen for the first time. */
static __always_inline void set_state(struct thread_state *st, __u32 tid, __u32 tgid, __u32 kind,
				      __u64 now, struct block_cause *cause)
{
	struct thread_state fresh = { .since = now, .kind = kind, .tgid = tgid, .last_kstack = -1 };

	if (st) {
		st->since = now;
		st->kind = kind;
		if (cause)
			st->cause = *cause;
		return;
	}
	if (cause)
		fresh.cause = *cause;
	if (bpf_map_update_elem(&threads, &tid, &fresh, BPF_ANY))
		count_lost();
}

static __always_inline void capture_cause(void *ctx, struct task_struct *prev, long state,
					  struct block_cause *c, struct thread_state *st)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	__u32 nr;
	__u8 *idle;

	c->syscall = -1;
	if (regs) {
#if defined(__TARGET_ARCH_x86)
		c->syscall = BPF_CORE_READ(regs, orig_ax);
		c->arg0 = BPF_CORE_READ(regs, di);
		c->futex_op = BPF_CORE_READ(regs, si);
#elif defined(__TARGET_ARCH_arm64)
		c->syscall = BPF_CORE_READ(regs, syscallno);
		c->arg0 = BPF_CORE_READ(regs, orig_x0);
		c->futex_op = BPF_CORE_READ(regs, regs[1]);
#endif
	}
	c->iowait = BPF_CORE_READ_BITFIELD_PROBED(prev, in_iowait);
	c->dstate = (state & TASK_UNINTERRUPTIBLE) ? 1 : 0;
	nr = c->syscall;
	idle = bpf_map_lookup_elem(&idle_syscalls, &nr);
	if (!c->iowait && idle && *idle) {
		/* futex: only condition-variable waits (WAIT_BITSET) are idle; a mutex wait keeps
		 * its stack as evidence */
		if (*idle != 2 || (c->futex_op & 0x7f) == FUTEX_WAIT_BITSET) {
			c->kstack = -1;
			return;
		}
	}
	if (st && st->last_kstack >= 0 && st->cause.syscall == c->syscall &&
	    st->cause.arg0 == c->arg0 && st->cause.iowait == c->iowait &&
	    (++st->blocks % STACK_REFRESH)) {
		c->kstack = st->last_kstack;
		return;
	}
	c->kstack = bpf_get_stackid(ctx, &stacks, 0);
	if (st)
		st->last_kstack = c->kstack;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(diagnose_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();
	struct thread_state *st;
	__u32 tid;

	if (!targ_start_ns)
		return 0;
	tid = prev->pid;
	if (tid && task_selected(prev)) {
		/* a preempted task may already have set a sleeping state: it is runnable */
		long state = preempt ? TASK_RUNNING : task_state(prev);
		__u32 tgid = prev->tgid;

		/* prev was on CPU since its last event (or since the window opened) */
		st = bpf_map_lookup_elem(&threads, &tid);
		account(tgid, KIND_ONCPU, 0, now - (st ? st->since : targ_start_ns));
		if (state & TASK_DEAD) {
			bpf_map_delete_elem(&threads, &tid);
		} else if (state == TASK_RUNNING) {
			set_state(st, tid, tgid, KIND_RUNQ, now, 0);
		} else {
			struct block_cause c = {};

			capture_cause(ctx, prev, state, &c, st);
			set_state(st, tid, tgid, KIND_BLOCKED, now, &c);
		}
	}

	tid = next->pid;
	if (!tid || !task_selected(next))
		return 0;
	st = bpf_map_lookup_elem(&threads, &tid);
	if (st) {
		__u64 ns = now - st->since;

		account(st->tgid, st->kind, &st->cause, ns);
		if (st->kind == KIND_RUNQ)
			runq_done(ns);
	} else {
		/* unseen since the window opened and not woken in it: it was runnable all along */
		account(next->tgid, KIND_RUNQ, 0, now - targ_start_ns);
	}
	set_state(st, tid, next->tgid, KIND_ONCPU, now, 0);
	return 0;
}

static __always_inline void woken(struct task_struct *p, bool is_new)
{
	__u64 now = bpf_ktime_get_ns();
	struct thread_state *st;
	__u32 tid = p->pid;

	if (!targ_start_ns || !tid || !task_selected(p))
		return;
	st = bpf_map_lookup_elem(&threads, &tid);
	if (st) {
		if (st->kind != KIND_BLOCKED)
			return;  /* a wakeup of a runnable task changes nothing */
		account(st->tgid, KIND_BLOCKED, &st->cause, now - st->since);
	} else if (BPF_CORE_READ(p, on_cpu)) {
		/* running since before the window (a wakeup can hit a task still on its CPU) */
		set_state(0, tid, p->tgid, KIND_ONCPU, targ_start_ns, 0);
		return;
	} else if (!is_new) {
		/* blocked since before the window: user space names the cause from /proc */
		struct prewindow pw = { .tgid = p->tgid, .ns = now - targ_start_ns };

		bpf_map_update_elem(&prewindow, &tid, &pw, BPF_NOEXIST);
	}
	set_state(st, tid, p->tgid, KIND_RUNQ, now, 0);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(diagnose_wakeup, struct task_struct *p)
{
	woken(p, false);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(diagnose_wakeup_new, struct task_struct *p)
{
	woken(p, true);
	return 0;
}
