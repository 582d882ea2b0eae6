/* Thread-state accounting records shared with bpfsight.diagnose.states (decoded by dtype). */
#ifndef BPFSIGHT_DIAGNOSE_H
#define BPFSIGHT_DIAGNOSE_H

enum thread_kind {
	KIND_ONCPU = 0,
	KIND_RUNQ = 1,     /* runnable, waiting for a CPU (woken or preempted) */
	KIND_BLOCKED = 2,  /* off CPU, not runnable: the cause decides which resource */
};

/* Why a thread blocked, captured when it was switched out. */
struct block_cause {
	__s32 kstack;    /* kernel stack id in `stacks`, or a negative error */
	__s32 syscall;   /* syscall in progress (pt_regs orig_ax), -1 when none */
	__u32 arg0;      /* first syscall argument (the fd of read/write/recv...), truncated */
	__u32 futex_op;  /* second syscall argument (the futex op) */
	__u8 iowait;     /* task->in_iowait: sleeping in io_schedule() */
	__u8 dstate;     /* TASK_UNINTERRUPTIBLE */
	__u8 pad[6];
};

struct acct_key {
	__u32 tgid;
	__u32 kind;
	struct block_cause cause;  /* zero for on-CPU and run-queue time */
};

struct acct_val {
	__u64 ns;
	__u64 count;
};

/* Where a thread is now, and since when (open interval at the end of the run). */
struct thread_state {
	__u64 since;
	__u32 kind;
	__u32 tgid;
	struct block_cause cause;
	__u32 blocks;       /* times it blocked: every STACK_REFRESH-th block re-reads the stack */
	__s32 last_kstack;  /* the stack of its last block in the same syscall on the same fd */
};

/* Time a thread spent blocked before its first event: its cause is read from /proc. */
struct prewindow {
	__u32 tgid;
	__u32 pad;
	__u64 ns;
};

#endif
