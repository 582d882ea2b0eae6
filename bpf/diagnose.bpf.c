// SPDX-License-Identifier: GPL-2.0
/* diagnose: where the target's threads spend their time, and what each wait was for.
 *
 * Every sched_switch / sched_waking of a selected thread closes the interval it was in (on CPU,
 * waiting in the run queue, or blocked) and adds it to the thread's sums (its `threads` entry;
 * user space adds them up). A blocked interval is keyed by two things: where the thread blocked
 * (kernel stack, syscall in progress, iowait flag, taken at the switch-out) and what woke it
 * (taken at sched_waking, which runs in the waker's context: a thread, a softirq vector and the
 * TCP segment it was processing, a device interrupt, or a timer). On-CPU and run-queue time are
 * the scheduler's own figures (sum_exec_runtime and sched_info.run_delay), read at each
 * switch-out, so they match /proc/PID/schedstat. User space names the resource from the pair: an epoll wait ended by a reply from a
 * peer is network, one ended by a new request is idle; a futex wait ended by a thread that had
 * itself waited on the same futex word is a lock passed on.
 *
 * The CPU context (softirq, hardirq, timer callback) is tracked by entry/exit tracepoints into a
 * per-CPU word: the wakeup itself cannot tell interrupt context from the interrupted task.
 * Nothing runs on syscalls. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "sock.bpf.h"
#include "diagnose.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0
#define TASK_UNINTERRUPTIBLE 2
#define TASK_DEAD 0x80
#define PF_KTHREAD 0x00200000

/* CLOCK_MONOTONIC at the start of the window, written by user space once every program is
 * attached (0 until then: events are ignored). A thread's time before its first event is
 * counted from here, so every thread covers the same window; a start taken before the
 * programs attach would count the untraced gap twice for threads that switched in it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} window SEC(".maps");
/* -p / -c: also account the processes that wake a target thread (from the first wakeup on),
 * to say what the target waited for one level down. Host-wide every process is accounted. */
const volatile bool targ_follow = false;
/* this architecture's futex syscall number (user space sets it) */
const volatile __s32 futex_nr = -1;
/* the kernel keeps sched_info.run_delay (CONFIG_SCHED_INFO, and it is counted: user space
 * checks /proc/self/schedstat); without it, run-queue waits are timed by the wall clock */
const volatile bool use_run_delay = false;

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

/* Processes followed because they woke a target thread: tgid -> when following began, and
 * the process's name then (it may be gone when the report is made). */
struct followed_proc {
	__u64 since;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct followed_proc);
} followed SEC(".maps");

/* The names of processes whose threads exited in the window: /proc no longer has them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, char[TASK_COMM_LEN]);
} exited SEC(".maps");

/* Blocked time ended by a segment from a TCP peer, by peer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct peer_key);
	__type(value, struct acct_val);
} peer_waits SEC(".maps");

/* Local TCP ports in LISTEN (filled from /proc/net/tcp* before attach, kept up to date by
 * inet_sock_set_state): a segment on a connection whose local port listens is a request to a
 * server, anything else a reply to a client. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u8);
} listen_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 64 * sizeof(__u64));
} stacks SEC(".maps");

/* Syscalls whose waits are idle by nature (nanosleep, epoll_wait, poll, ...): the syscall
 * alone names where the thread waited, so the kernel stack (the costliest step, ~1 us) is not
 * collected. Filled by user space before attach: index = syscall number, value 1 = skip the
 * stack, 2 = skip it for condition-variable waits only (futex). */
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
/* Two futex words this close belong to one lock object (a condition variable's two groups, or
 * a condition variable and the mutex beside it, as in CPython's interpreter lock). */
#define SAME_LOCK_BYTES 128

/* Run-queue latency of the selected threads (usecs), for the CPU panel; per CPU, so a switch
 * takes no atomic and no shared cache line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lifetimes);
} lifetimes SEC(".maps");

/* Nanoseconds of gaps between two events of a thread that skipped one it must have had (a
 * switch-out, a switch-in or a wakeup the kernel did not trace): split with the scheduler's own
 * sum_exec_runtime, and shown. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} untraced SEC(".maps");

static __always_inline void count_untraced(__u64 ns)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&untraced, &zero);

	if (n)
		*n += ns;
}

/* What this CPU is doing besides running its current task. */
struct cpu_ctx {
	__u32 soft;        /* softirq vector + 1 while one is served, else 0 */
	__u32 hard;        /* HARD_TIMER inside an hrtimer callback, irq + HARD_IRQ0 in a handler */
	__u64 soft_seq;    /* softirq runs started on this CPU: tells a stale sock event apart */
	__u64 sock_seq;    /* soft_seq of the sock event below */
	__u8 sock_event;   /* enum sock_event */
	__u8 sock_server;  /* the segment's local port listens */
	__u16 pad;
	__u32 pad2;
	struct flow flow;  /* the connection of the sock event */
};

#define HARD_TIMER 1
#define HARD_IRQ0 2

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_ctx);
} cpu_ctx SEC(".maps");

static const struct acct_val zero_val;

static __always_inline __u64 window_start(void)
{
	__u32 zero = 0;
	__u64 *start = bpf_map_lookup_elem(&window, &zero);

	return start ? *start : 0;
}

static __always_inline struct cpu_ctx *this_cpu_ctx(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_ctx, &zero);
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

/* When accounting of task t began: the window's start for a target, the moment it was first
 * followed for a process that woke one; 0 when t is not accounted. */
static __always_inline __u64 accounted_since(struct task_struct *t, __u64 start)
{
	struct followed_proc *proc;
	__u32 tgid;

	if (task_selected(t))
		return start;
	if (!targ_follow)
		return 0;
	tgid = t->tgid;
	proc = bpf_map_lookup_elem(&followed, &tgid);
	return proc ? proc->since : 0;
}

static __always_inline void account_n(__u32 tgid, __u32 kind, struct block_cause *cause,
				      struct waker *waker, __u64 ns, __u64 count)
{
	struct acct_key key = { .tgid = tgid, .kind = kind };
	struct acct_val *v;

	if (cause)
		key.cause = *cause;
	if (waker)
		key.waker = *waker;
	v = lookup_or_try_init(&acct, &key, &zero_val);
	if (!v) {
		count_lost();
		return;
	}
	__sync_fetch_and_add(&v->ns, ns);
	__sync_fetch_and_add(&v->count, count);
}

static __always_inline void account(__u32 tgid, __u32 kind, struct block_cause *cause,
				    struct waker *waker, __u64 ns)
{
	account_n(tgid, kind, cause, waker, ns, 1);
}

static __always_inline void runq_done(__u64 ns)
{
	__u32 zero = 0;
	struct hist *h = bpf_map_lookup_elem(&runq_hist, &zero);
	__u64 slot, us = ns / 1000;

	if (!h)
		return;
	slot = log2_u64(us);
	h->slots[slot < MAX_SLOTS ? slot : MAX_SLOTS - 1]++;
	h->total += us;
}

static __always_inline void count_lifetime(bool birth, __u64 now)
{
	__u32 zero = 0;
	struct lifetimes *l = bpf_map_lookup_elem(&lifetimes, &zero);

	if (!l)
		return;
	if (birth) {
		l->births++;
		l->birth_ns += now;
	} else {
		l->deaths++;
		l->death_ns += now;
	}
}

/* Move thread tid to a new state. st is its current entry (updated in place: no map update
 * on the hot path) or NULL for a thread seen for the first time, whose entry starts from the
 * scheduler's counters of t now (t is off CPU then, but for a first switch-in: `oncpu`). */
static __always_inline struct thread_state *set_state(struct thread_state *st, __u32 tid,
						      struct task_struct *t, __u32 kind, __u64 now,
						      struct block_cause *cause, bool oncpu)
{
	struct thread_state fresh = { .since = now, .kind = kind, .tgid = t->tgid,
				      .last_kstack = -1 };

	if (st) {
		st->since = now;
		st->kind = kind;
		if (cause)
			st->cause = *cause;
		return st;
	}
	if (cause)
		fresh.cause = *cause;
	fresh.exec = t->se.sum_exec_runtime;
	/* run_delay of a thread off CPU leaves out its current wait, which the next switch-out
	 * will show; one switched in now has its wait added after this tracepoint: unknown */
	fresh.delay = t->sched_info.run_delay;
	fresh.delay_known = !oncpu;
	if (bpf_map_update_elem(&threads, &tid, &fresh, BPF_ANY)) {
		count_lost();
		return 0;
	}
	return bpf_map_lookup_elem(&threads, &tid);
}

static __always_inline bool same_words(const void *a, const void *b, int words)
{
	const __u64 *x = a, *y = b;

	for (int i = 0; i < words; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* Add a blocked interval to the thread's sum for its kind of wait (where, what woke it); a
 * different kind moves the old sum to `acct` first. */
static __always_inline void add_blocked(struct thread_state *st, struct block_cause *cause,
					struct waker *w, __u64 ns)
{
	if (st->blk_count && same_words(&st->blk_cause, cause, sizeof(*cause) / 8) &&
	    same_words(&st->blk_waker, w, sizeof(*w) / 8)) {
		st->blk_ns += ns;
		st->blk_count++;
		return;
	}
	if (st->blk_count)
		account_n(st->tgid, KIND_BLOCKED, &st->blk_cause, &st->blk_waker, st->blk_ns,
			  st->blk_count);
	st->blk_cause = *cause;
	st->blk_waker = *w;
	st->blk_ns = ns;
	st->blk_count = 1;
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
		c->syscall = regs->orig_ax;
		c->arg0 = regs->di;
		c->futex_op = regs->si;
#elif defined(__TARGET_ARCH_arm64)
		c->syscall = regs->syscallno;
		c->arg0 = regs->orig_x0;
		c->futex_op = regs->regs[1];
#endif
	}
	c->iowait = BPF_CORE_READ_BITFIELD(prev, in_iowait);
	c->dstate = (state & TASK_UNINTERRUPTIBLE) ? 1 : 0;
	nr = c->syscall;
	idle = bpf_map_lookup_elem(&idle_syscalls, &nr);
	if (!c->iowait && idle && *idle) {
		/* futex: only condition-variable waits (WAIT_BITSET) skip it; a mutex wait keeps
		 * its stack as evidence */
		if (*idle != 2 || (c->futex_op & 0x7f) == FUTEX_WAIT_BITSET) {
			c->kstack = KSTACK_SKIPPED;
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

/* Add a run-queue wait to the thread's sums. A wait that followed a futex wait is kept apart
 * (keyed by the futex word in user space): a lock convoy's CPU waits. (Only close_stint, the
 * common path, also puts waits in the latency histogram.) */
static __always_inline void add_runq(struct thread_state *st, __u64 ns)
{
	if (!ns)
		return;
	st->runq_ns += ns;
	if (st->woken & WOKEN_FUTEX)
		st->runq_futex_ns += ns;
}

/* An exiting thread's sums, into `acct` (its state entry goes away). */
static __always_inline void flush_sums(struct thread_state *st)
{
	struct block_cause after = { .syscall = futex_nr, .arg0 = st->cause.arg0 };

	if (st->oncpu_ns)
		account(st->tgid, KIND_ONCPU, 0, 0, st->oncpu_ns);
	if (st->runq_ns > st->runq_futex_ns)
		account(st->tgid, KIND_RUNQ, 0, 0, st->runq_ns - st->runq_futex_ns);
	if (st->runq_futex_ns)
		account(st->tgid, KIND_RUNQ, &after, 0, st->runq_futex_ns);
	if (st->blk_count)
		account_n(st->tgid, KIND_BLOCKED, &st->blk_cause, &st->blk_waker, st->blk_ns,
			  st->blk_count);
}

/* A thread we believe on CPU was found off it (sched_waking with p->on_cpu clear, or switched
 * in again): its switch-out was never traced. Some sandboxes hide their supervisor's switch-outs
 * while its switch-ins still show; counted from the wall clock, every such gap would be on-CPU
 * time. The scheduler's own sum_exec_runtime says how much of the gap it really ran. */
static __always_inline __u64 hidden_gap_oncpu(struct thread_state *st, __u64 exec_now, __u64 gap)
{
	__u64 ran = exec_now - st->exec;

	return ran < gap ? ran : gap;
}

/* t has had no event since accounting began (at `from`), and the scheduler says its current
 * state began `ago` ns before now (STINT_UNKNOWN: it cannot say). Returns when that state
 * began, as far as the window goes; the time before it (a wakeup or switch-in we did not see)
 * is accounted as a wait we cannot name. Counted from `from` instead, a kworker woken on its
 * way off the CPU came out on CPU, and a writer whose wakeup went unseen in the run queue,
 * for all the time since the window opened. */
static __always_inline __u64 state_start(struct task_struct *t, __u64 ago, __u64 now, __u64 from)
{
	struct block_cause unseen = { .kstack = KSTACK_UNSEEN, .syscall = -1 };
	__u64 gap;

	if (ago >= now - from)
		return from;
	gap = now - ago - from;
	count_untraced(gap);
	account(t->tgid, KIND_BLOCKED, &unseen, 0, gap);
	return now - ago;
}

/* The end of a stint on CPU (st is ONCPU since its switch-in): account it and the wait for a
 * CPU that led to it, as the scheduler counted them.
 * - On CPU: the scheduler starts a task's clock when it picks it, a few microseconds before
 *   the sched_switch tracepoint. sum_exec_runtime's growth over the stint says how many; they
 *   move from the wait to the stint.
 * - The wait: between sched_waking (the waker calls try_to_wake_up) and the switch-in there is
 *   also the time a wakeup takes to reach an idle CPU (an IPI, the CPU leaving idle: tens of
 *   microseconds on a VM), which the scheduler's run_delay leaves out. run_delay's growth since
 *   the last switch-out is the run-queue wait; the rest belongs to the wait that just ended.
 * So on-CPU and run-queue time match /proc/PID/schedstat, and the thread's time adds up. */
static __always_inline void close_stint(struct thread_state *st, struct task_struct *t, __u64 now)
{
	__u64 wall = now - st->since, exec = t->se.sum_exec_runtime, ran = exec - st->exec;
	__u64 pending = st->pending_runq, early = ran > wall ? ran - wall : 0, runq, delay;

	if (early > pending)
		early = pending;
	st->oncpu_ns += wall + early;
	pending -= early;
	runq = pending;
	if (use_run_delay && st->delay_known) {
		delay = t->sched_info.run_delay - st->delay;
		if (delay < runq)
			runq = delay;
	}
	add_runq(st, runq);
	if (runq)
		runq_done(runq);
	if (pending > runq) {  /* the wakeup's way to an idle CPU: part of the wait it ended */
		if ((st->woken & WOKEN_BLOCK) && st->blk_count)
			st->blk_ns += pending - runq;
		else
			add_runq(st, pending - runq);
	}
	st->pending_runq = 0;
	st->woken = 0;
}

/* Switched out while our books say it was blocked or runnable: the wakeup and the switch-in
 * that came between were not traced (seen here for kernel threads waking from a long sleep).
 * The scheduler's sum_exec_runtime since its last switch-out says how long it ran; the rest it
 * was where our books say. */
static __always_inline void missed_switch_in(struct thread_state *st, struct task_struct *t,
					     __u64 now)
{
	__u64 gap = now - st->since;
	__u64 ran = hidden_gap_oncpu(st, t->se.sum_exec_runtime, gap), runq = 0;

	count_untraced(gap);
	add_runq(st, st->pending_runq);
	st->pending_runq = 0;
	st->oncpu_ns += ran;
	if (st->kind == KIND_BLOCKED) {
		if (use_run_delay && st->delay_known) {  /* the scheduler says how long it waited */
			runq = t->sched_info.run_delay - st->delay;
			if (runq > gap - ran)
				runq = gap - ran;
		}
		add_runq(st, runq);
		add_blocked(st, &st->cause, &st->waker, gap - ran - runq);
		__builtin_memset(&st->waker, 0, sizeof(st->waker));
	} else {
		add_runq(st, gap - ran);
	}
}

/* --- sched_switch: the end of an on-CPU interval, and the end of a wait for a CPU --- */

SEC("tp_btf/sched_switch")
int BPF_PROG(diagnose_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns(), start = window_start(), from;
	struct thread_state *st;
	__u32 tid;

	if (!start)
		return 0;
	tid = prev->pid;
	if (tid && (from = accounted_since(prev, start))) {
		long state = switch_state_btf(preempt, prev);
		__u32 tgid = prev->tgid;

		/* prev was on CPU since its last event (or since accounting began) */
		st = bpf_map_lookup_elem(&threads, &tid);
		if (st && st->kind == KIND_ONCPU)
			close_stint(st, prev, now);
		else if (st)
			missed_switch_in(st, prev, now);
		else  /* running since before accounting began */
			account(tgid, KIND_ONCPU, 0, 0,
				now - state_start(prev, stint_so_far(prev, use_run_delay), now, from));
		if (state & TASK_DEAD) {
			char comm[TASK_COMM_LEN];

			if (st)
				flush_sums(st);
			bpf_map_delete_elem(&threads, &tid);
			st = 0;  /* freed: another thread's entry may take its place at once */
			BPF_CORE_READ_STR_INTO(&comm, prev, group_leader, comm);
			bpf_map_update_elem(&exited, &tgid, comm, BPF_NOEXIST);
			if (from == start && task_selected(prev))
				count_lifetime(false, now);
		} else if (state == TASK_RUNNING) {
			st = set_state(st, tid, prev, KIND_RUNQ, now, 0, false);
		} else {
			struct block_cause c = {};

			capture_cause(ctx, prev, state, &c, st);
			if (st && st->waker_ts < st->since)  /* from an earlier stint on CPU */
				__builtin_memset(&st->waker, 0, sizeof(st->waker));
			st = set_state(st, tid, prev, KIND_BLOCKED, now, &c, false);
		}
		if (st) {  /* baselines for the next stint (see close_stint, missed_switch_in) */
			st->exec = prev->se.sum_exec_runtime;
			st->delay = prev->sched_info.run_delay;
			st->delay_known = 1;
		}
	}

	tid = next->pid;
	if (!tid || !(from = accounted_since(next, start)))
		return 0;
	st = bpf_map_lookup_elem(&threads, &tid);
	if (st) {
		__u64 ns = now - st->since;

		if (st->kind == KIND_ONCPU) {
			/* never seen leaving: it ran for part of the gap and waited to run again
			 * (a block would have shown as a wakeup) */
			__u64 ran = hidden_gap_oncpu(st, next->se.sum_exec_runtime, ns);

			count_untraced(ns);
			add_runq(st, st->pending_runq);
			st->oncpu_ns += ran;
			add_runq(st, ns - ran);
			st->pending_runq = 0;
		} else if (st->kind == KIND_RUNQ) {
			st->pending_runq = ns;  /* accounted with the stint it led to (close_stint) */
		} else {
			/* switched in while blocked by our books: it was woken on its way off its
			 * CPU, before our switch-out ran (a lock handed over at once, say), so no
			 * wakeup ended the wait. Part of the gap it was runnable: the next
			 * switch-out splits it with run_delay, like any wait for a CPU */
			add_blocked(st, &st->cause, &st->waker, 0);
			st->woken = WOKEN_BLOCK | (st->cause.syscall == futex_nr ? WOKEN_FUTEX : 0);
			st->pending_runq = ns;
			__builtin_memset(&st->waker, 0, sizeof(st->waker));
		}
	} else {
		/* unseen since accounting began and not woken since: runnable since the scheduler
		 * queued it (sched_info.last_queued), at most since accounting began */
		__u64 queued = state_start(next, queued_so_far(next, use_run_delay), now, from);

		st = set_state(0, tid, next, KIND_ONCPU, now, 0, true);
		if (st)
			st->pending_runq = now - queued;
	}
	st = set_state(st, tid, next, KIND_ONCPU, now, 0, true);
	if (st)
		st->exec = next->se.sum_exec_runtime;
	return 0;
}

/* --- sched_waking: the end of a blocked interval, and who ended it --- */

static __always_inline bool same_lock(__u32 a, __u32 b)
{
	return (a > b ? a - b : b - a) < SAME_LOCK_BYTES;
}

/* Fill w from this CPU's context. wakee is the woken thread's state (its block cause). */
static __always_inline void describe_waker(struct waker *w, struct thread_state *wakee)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct cpu_ctx *cc = this_cpu_ctx();
	struct thread_state *ws;
	__u32 tid;

	__builtin_memset(w, 0, sizeof(*w));
	w->tgid = cur->tgid;
	if (cc && cc->hard) {
		if (cc->hard == HARD_TIMER) {
			w->type = WAKER_TIMER;
		} else {
			w->type = WAKER_HARDIRQ;
			w->vec = cc->hard - HARD_IRQ0;
		}
		return;
	}
	if (cc && cc->soft) {
		w->type = WAKER_SOFTIRQ;
		w->vec = cc->soft - 1;
		if (cc->sock_event && cc->sock_seq == cc->soft_seq) {
			w->sock = cc->sock_event;
			if (cc->sock_server)
				w->flags |= WF_SERVER;
		}
		return;
	}
	w->type = WAKER_TASK;
	if (cur->flags & PF_KTHREAD)
		w->flags |= WF_KTHREAD;
	/* a futex wait ended by a thread whose own last wait was on the same lock: the lock was
	 * handed over (a convoy, or threads taking turns), not work handed out */
	if (wakee && wakee->cause.syscall == futex_nr && futex_nr >= 0) {
		tid = cur->pid;
		ws = bpf_map_lookup_elem(&threads, &tid);
		if (ws && ws->cause.syscall == futex_nr &&
		    same_lock(ws->cause.arg0, wakee->cause.arg0))
			w->flags |= WF_HANDOFF;
	}
}

static __always_inline void count_peer_wait(__u32 tgid, struct waker *w, __u64 ns)
{
	struct cpu_ctx *cc;
	struct peer_key key = { .tgid = tgid };
	struct acct_val *v;

	if (w->type != WAKER_SOFTIRQ || !w->sock)
		return;
	cc = this_cpu_ctx();
	if (!cc)
		return;
	key.flow = cc->flow;
	v = lookup_or_try_init(&peer_waits, &key, &zero_val);
	if (!v)
		return;
	__sync_fetch_and_add(&v->ns, ns);
	__sync_fetch_and_add(&v->count, 1);
}

static __always_inline bool loopback_peer(void)
{
	struct cpu_ctx *cc = this_cpu_ctx();

	if (!cc)
		return false;
	if (cc->flow.family == AF_INET)
		return cc->flow.daddr[0] == 127;
	return cc->flow.family == AF_INET6 && cc->flow.daddr[15] == 1 && !cc->flow.daddr[0] &&
	       !cc->flow.daddr[8] && !cc->flow.daddr[14];
}

/* A target thread was woken by a process outside the target: account that process from now
 * on, to say what it was doing while the target waited for it. Over loopback TCP the softirq
 * that wakes the target runs in the sending process's context: that process is the peer. */
static __always_inline void follow(struct waker *w, __u32 wakee_tgid, __u64 now)
{
	if (!targ_follow || w->tgid == wakee_tgid || !w->tgid || (w->flags & WF_KTHREAD))
		return;
	struct task_struct *cur = bpf_get_current_task_btf();
	struct followed_proc proc = { .since = now };

	if (task_selected(cur))
		return;  /* a target itself, accounted already */
	if (w->type != WAKER_TASK && !(w->type == WAKER_SOFTIRQ && w->sock && loopback_peer()))
		return;
	BPF_CORE_READ_STR_INTO(&proc.comm, cur, group_leader, comm);
	bpf_map_update_elem(&followed, &w->tgid, &proc, BPF_NOEXIST);
}

/* sched_waking runs in the waker's context: it says who woke the thread, and ends its wait
 * (the wakeup's way to an idle CPU is added back to the wait at the next switch-out: see
 * close_stint). */
SEC("tp_btf/sched_waking")
int BPF_PROG(diagnose_waking, struct task_struct *p)
{
	__u64 now = bpf_ktime_get_ns(), start = window_start(), from;
	struct thread_state *st;
	__u32 tid = p->pid;

	if (!start || !tid || !(from = accounted_since(p, start)))
		return 0;
	st = bpf_map_lookup_elem(&threads, &tid);
	if (st) {
		__u64 ns = now - st->since;

		if (st->kind == KIND_BLOCKED) {
			struct waker w;

			describe_waker(&w, st);
			add_blocked(st, &st->cause, &w, ns);
			count_peer_wait(st->tgid, &w, ns);
			if (from == start)
				follow(&w, st->tgid, now);
			st->woken = WOKEN_BLOCK | (st->cause.syscall == futex_nr ? WOKEN_FUTEX : 0);
			set_state(st, tid, p, KIND_RUNQ, now, 0, false);
		} else if (st->kind == KIND_ONCPU && p->on_cpu) {
			/* woken on its way off the CPU: the switch-out (on its CPU) has not been
			 * traced yet; keep the waker for the wait it is about to start */
			describe_waker(&st->waker, st);
			st->waker_ts = now;
		} else if (st->kind == KIND_ONCPU) {
			/* off its CPU without a traced switch-out (see hidden_gap_oncpu): it ran for
			 * part of the gap and was blocked, where we cannot tell, for the rest */
			struct block_cause unseen = { .kstack = KSTACK_UNSEEN, .syscall = -1 };
			__u64 ran = hidden_gap_oncpu(st, p->se.sum_exec_runtime, ns);
			struct waker w;

			describe_waker(&w, 0);
			count_untraced(ns);
			add_runq(st, st->pending_runq);
			st->pending_runq = 0;
			st->oncpu_ns += ran;
			add_blocked(st, &unseen, &w, ns - ran);
			st->woken = WOKEN_BLOCK;
			st->delay_known = 0;
			set_state(st, tid, p, KIND_RUNQ, now, 0, false);
		}
		return 0;  /* a wakeup of a runnable task changes nothing */
	}
	if (p->on_cpu) {
		/* on CPU since before accounting began, or on its way off it (a wakeup can hit a
		 * task still on its CPU) */
		st = set_state(0, tid, p, KIND_ONCPU,
			       state_start(p, stint_so_far(p, use_run_delay), now, from), 0, true);
	} else {
		/* blocked since before the window: user space names the cause from /proc */
		struct prewindow pw = { .tgid = p->tgid, .ns = now - from };

		describe_waker(&pw.waker, 0);
		bpf_map_update_elem(&prewindow, &tid, &pw, BPF_NOEXIST);
		set_state(0, tid, p, KIND_RUNQ, now, 0, false);
	}
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(diagnose_wakeup_new, struct task_struct *p)
{
	__u64 now = bpf_ktime_get_ns(), start = window_start();
	__u32 tid = p->pid;

	if (!start || !tid || !accounted_since(p, start))
		return 0;
	if (task_selected(p))
		count_lifetime(true, now);
	set_state(bpf_map_lookup_elem(&threads, &tid), tid, p, KIND_RUNQ, now, 0, false);
	return 0;
}

/* --- the CPU's context, for describe_waker --- */

SEC("tp_btf/softirq_entry")
int BPF_PROG(diagnose_softirq_entry, unsigned int vec)
{
	struct cpu_ctx *cc = this_cpu_ctx();

	if (cc) {
		cc->soft = vec + 1;
		cc->soft_seq++;
	}
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(diagnose_softirq_exit, unsigned int vec)
{
	struct cpu_ctx *cc = this_cpu_ctx();

	if (cc)
		cc->soft = 0;
	return 0;
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(diagnose_hrtimer_entry, struct hrtimer *timer, ktime_t *now)
{
	struct cpu_ctx *cc = this_cpu_ctx();

	if (cc)
		cc->hard = HARD_TIMER;
	return 0;
}

SEC("tp_btf/hrtimer_expire_exit")
int BPF_PROG(diagnose_hrtimer_exit, struct hrtimer *timer)
{
	struct cpu_ctx *cc = this_cpu_ctx();

	if (cc)
		cc->hard = 0;
	return 0;
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(diagnose_irq_entry, int irq, struct irqaction *action)
{
	struct cpu_ctx *cc = this_cpu_ctx();

	if (cc)
		cc->hard = HARD_IRQ0 + (__u32)irq;
	return 0;
}

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(diagnose_irq_exit, int irq, struct irqaction *action, int ret)
{
	struct cpu_ctx *cc = this_cpu_ctx();

	if (cc)
		cc->hard = 0;
	return 0;
}

/* --- TCP: which connection a NET_RX softirq's wakeup is about --- */

static __always_inline void note_sock_event(struct sock *sk, __u8 event)
{
	struct cpu_ctx *cc = this_cpu_ctx();
	__u16 lport;

	if (!cc || !cc->soft)
		return;  /* process context (socket backlog): the thread is not being woken */
	skc_flow(&sk->__sk_common, &cc->flow);
	lport = cc->flow.sport;
	cc->sock_server = bpf_map_lookup_elem(&listen_ports, &lport) ? 1 : 0;
	cc->sock_event = event;
	cc->sock_seq = cc->soft_seq;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(diagnose_tcp_probe, struct sock *sk, const struct sk_buff *skb)
{
	/* payload = skb->len less the TCP header (doff: the high nibble of byte 12, in words),
	 * as the tcp_probe event's own data_len */
	unsigned char *th = BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, transport_header);
	__u8 doff = 0;

	bpf_probe_read_kernel(&doff, 1, th + 12);
	note_sock_event(sk, BPF_CORE_READ(skb, len) > (__u32)(doff >> 4) * 4 ? SOCK_DATA : SOCK_ACK);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(diagnose_sock_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u16 port;
	__u8 one = 1;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_LISTEN || oldstate == TCP_LISTEN) {
		port = BPF_CORE_READ(sk, __sk_common.skc_num);
		if (newstate == TCP_LISTEN)
			bpf_map_update_elem(&listen_ports, &port, &one, BPF_ANY);
		else
			bpf_map_delete_elem(&listen_ports, &port);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV)
		note_sock_event((struct sock *)sk, SOCK_ACCEPTED);
	else if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT)
		note_sock_event((struct sock *)sk, SOCK_CONNECTED);
	return 0;
}
