/* Thread-state accounting records shared with bpfsight.diagnose.states (decoded by dtype). */
#ifndef BPFSIGHT_DIAGNOSE_H
#define BPFSIGHT_DIAGNOSE_H

#include "flow.h"

enum thread_kind {
	KIND_ONCPU = 0,
	KIND_RUNQ = 1,     /* runnable, waiting for a CPU (woken or preempted) */
	KIND_BLOCKED = 2,  /* off CPU, not runnable: the cause and the waker decide the resource */
};

/* kstack values that are not stack ids */
#define KSTACK_SKIPPED -1   /* not collected on purpose (an idle syscall names the cause) */
#define KSTACK_UNSEEN -100  /* the thread left its CPU without a traced switch (see hidden_gap) */

/* Why a thread blocked, captured when it was switched out. */
struct block_cause {
	__s32 kstack;    /* kernel stack id in `stacks`, KSTACK_*, or a negative error */
	__s32 syscall;   /* syscall in progress (pt_regs orig_ax), -1 when none */
	__u32 arg0;      /* first syscall argument (an fd, or a futex word's address), truncated */
	__u32 futex_op;  /* second syscall argument (the futex op) */
	__u8 iowait;     /* task->in_iowait: sleeping in io_schedule() */
	__u8 dstate;     /* TASK_UNINTERRUPTIBLE */
	__u8 pad[6];
};

/* What ended a blocked interval: the context that called try_to_wake_up (sched_waking runs in
 * the waker's context). In interrupt context `tgid` is the interrupted task's: for loopback
 * traffic, whose softirq runs in the sender's context, that is the sending process. */
enum waker_type {
	WAKER_NONE = 0,     /* no wakeup seen (the window ended, or a thread born in it) */
	WAKER_TASK = 1,     /* a thread in process context */
	WAKER_SOFTIRQ = 2,  /* a softirq: vec says which (NET_RX = 3, BLOCK = 4, TIMER = 1, ...) */
	WAKER_HARDIRQ = 3,  /* a device interrupt handler: vec is the irq number, truncated */
	WAKER_TIMER = 4,    /* an hrtimer callback (nanosleep, poll and futex timeouts, the tick) */
};

/* The TCP event of the softirq run that woke a thread, when there was one. */
enum sock_event {
	SOCK_NONE = 0,
	SOCK_DATA = 1,       /* a segment with payload */
	SOCK_ACK = 2,        /* a segment without payload: acknowledged data frees send space */
	SOCK_ACCEPTED = 3,   /* a connection to a listening socket completed its handshake */
	SOCK_CONNECTED = 4,  /* an outgoing connection completed its handshake */
};

#define WF_HANDOFF 1   /* the waking thread last blocked on the same futex word: a lock passed on */
#define WF_SERVER 2    /* the socket's local port is a listening port: the thread serves it */
#define WF_KTHREAD 4   /* the waking thread is a kernel thread (kworker, ksoftirqd, ...) */

struct waker {
	__u8 type;     /* enum waker_type */
	__u8 vec;      /* softirq vector / irq number */
	__u8 sock;     /* enum sock_event */
	__u8 flags;    /* WF_* */
	__u32 tgid;    /* the waking (or, in interrupt context, the interrupted) process */
};

struct acct_key {
	__u32 tgid;
	__u32 kind;
	struct block_cause cause;  /* zero for on-CPU and run-queue time */
	struct waker waker;        /* zero for on-CPU and run-queue time */
};

struct acct_val {
	__u64 ns;
	__u64 count;
};

/* Where a thread is now, and since when (open interval at the end of the run), and what it
 * did so far. On-CPU, run-queue and blocked time are summed here rather than in `acct`: a
 * context switch or a wakeup then updates no shared map. User space adds them up per process;
 * an exiting thread moves them to `acct` first. */
#define WOKEN_BLOCK 1  /* runnable because a wait ended (not preempted, not new) */
#define WOKEN_FUTEX 2  /* ...a futex wait: its run-queue time is keyed by the futex word */

struct thread_state {
	__u64 since;
	__u64 exec;         /* se.sum_exec_runtime at its last switch-in or switch-out */
	__u32 kind;
	__u32 tgid;
	struct block_cause cause;
	__u32 blocks;       /* times it blocked: every STACK_REFRESH-th block re-reads the stack */
	__s32 last_kstack;  /* the stack of its last block in the same syscall on the same fd */
	__u32 woken;        /* WOKEN_* for the current run-queue wait */
	__u32 delay_known;  /* `delay` is a baseline (set when the thread was first seen off CPU) */
	struct waker waker; /* what woke it on its way off the CPU (see diagnose_waking) */
	__u64 waker_ts;     /* when: a waker from before its last switch-in is stale */
	__u64 pending_runq; /* its last wait for a CPU, by the wall clock, accounted at switch-out */
	__u64 delay;        /* sched_info.run_delay at its last switch-out: the kernel's figure */
	__u64 oncpu_ns;
	__u64 runq_ns;
	__u64 runq_futex_ns;  /* of runq_ns: waits that followed a futex wait */
	/* its waits of the last kind (where it blocked, what woke it), summed until another
	 * kind comes: a thread mostly waits for the same thing over and over */
	struct block_cause blk_cause;
	struct waker blk_waker;
	__u64 blk_ns;
	__u64 blk_count;
};

/* Time a thread spent blocked before its first event: its cause is read from /proc. */
struct prewindow {
	__u32 tgid;
	struct waker waker;
	__u64 ns;
};

/* Time spent waiting for a remote TCP end (woken by a segment from it). */
struct peer_key {
	__u32 tgid;
	__u32 pad;
	struct flow flow;   /* saddr/sport: this end; daddr/dport: the peer */
};

/* Threads of the target that started or ended inside the window: the thread-seconds the
 * accounting must add up to are threads x window, less what they did not live. */
struct lifetimes {
	__u64 births;
	__u64 birth_ns;     /* sum of their start times */
	__u64 deaths;
	__u64 death_ns;     /* sum of their end times */
};

#endif
