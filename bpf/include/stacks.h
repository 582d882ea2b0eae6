/* Stack collection records shared by profile/offcputime and bpfsight.profile.stacks (which
 * decodes them by field offsets and mirrors the enum below). */
#ifndef BPFSIGHT_STACKS_H
#define BPFSIGHT_STACKS_H

#define PERF_MAX_STACK_DEPTH 127
/* A stack id for "not collected" (user-mode sample: no kernel stack; -K; kernel thread).
 * Negative like the errors bpf_get_stackid returns (-EFAULT, -EEXIST, ...), but no errno. */
#define STACK_NONE (-32768)

/* Indexes of the per-CPU stack_errors array: why a stack is missing from the output. */
enum stack_error {
	ERR_KERN_EEXIST,  /* kernel stack collided with another in stackmap (hash bucket taken) */
	ERR_KERN_EFAULT,  /* kernel stack could not be walked */
	ERR_KERN_OTHER,
	ERR_USER_EEXIST,
	ERR_USER_EFAULT,  /* user stack could not be read (no frame pointers, paged out) */
	ERR_USER_OTHER,
	ERR_COUNTS_FULL,  /* the aggregation map was full: the sample itself was lost */
	ERR_UNTRACKED,    /* offcputime: no storage for a blocked thread (allocation failed) */
	STACK_ERR_MAX,
};

#define COMM_LEN 16

/* profile: one entry per (process, stack pair); value is a sample count. */
struct profile_key {
	__u32 pid;  /* tgid, as BCC's profile */
	__s32 user_stack_id;
	__s32 kern_stack_id;
	char comm[COMM_LEN];
	__u64 py_stack_id;  /* the CPython frames (pyframes.bpf.h); 0: none */
	__u32 py_tid;       /* with Python frames: the thread, and whether it held the */
	__u32 py_gil;       /* interpreter lock (enum py_gil); else 0 */
};

/* offcputime --wakers: who woke the thread (zeroed when not asked for). */
struct waker {
	__u32 pid;
	__s32 user_stack_id;
	__s32 kern_stack_id;
	char comm[COMM_LEN];
};

struct offcpu_key {
	__u32 pid;  /* thread id, as BCC's offcputime */
	__u32 tgid;
	__s32 user_stack_id;
	__s32 kern_stack_id;
	__u32 state;  /* prev->__state when it was switched out: 0 preempted, 1 S, 2 D, ... */
	char comm[COMM_LEN];
	struct waker waker;
	__u64 py_stack_id;  /* the CPython frames it blocked in (pyframes.bpf.h); 0: none */
};

/* profile --unwind dwarf: one sample's user registers, followed in the ring by `size` bytes of
 * its user stack from sp (userstack.bpf.h). */
#define USER_STACK_BYTES 16384
struct user_stack_sample {
	__u32 pid;  /* tgid */
	__s32 kern_stack_id;
	char comm[COMM_LEN];
	__u64 py_stack_id;
	__u64 ip;
	__u64 sp;
	__u64 bp;
	__u32 size;
	__u32 py_tid;  /* as in struct profile_key */
	__u32 py_gil;
	__u32 reserved;
};

struct offcpu_val {
	__u64 total_ns;
	__u64 count;
};

#endif
