// SPDX-License-Identifier: GPL-2.0
/* gpulat: what a process's CUDA calls cost on the CPU side, in three views per process:
 *  - every traced CUDA runtime/driver function: a latency histogram (uprobe + uretprobe), and
 *    the bytes its size argument asked for (copies, allocations);
 *  - the NVIDIA driver's ioctls (fds on /dev/nvidia* nodes) by command: latency and errors;
 *  - while a thread is inside a synchronisation call: its off-CPU time and run-queue latency,
 *    so "the GPU was slow" (blocked, waiting for the GPU) is told apart from "the thread
 *    feeding it waited for a core" (runnable, not running).
 * One uprobe/uretprobe program pair serves every function: the BPF cookie of each link says
 * which function it is, where its size argument is and whether it is a sync call.
 * Per-thread state lives in task storage (tp_btf build) or in a tid-keyed hash (raw_tp twins,
 * for kernels without BTF-typed tracepoints); user space picks with use_task_storage. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "files.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0
#define MAX_DEPTH 8		/* nested traced calls per thread (the runtime calls the driver) */
#define NODE_LEN 24		/* "nvidia-uvm-tools" and friends */
#define NVIDIA_MAJOR 195	/* /dev/nvidia0..N, /dev/nvidiactl */
#define MINORBITS 20		/* kernel dev_t encoding */
#ifndef S_IFCHR
#define S_IFCHR 0020000
#endif

/* The cookie user space gives each uprobe link (bpfsight.tools.gpulat.cookie_of). */
#define COOKIE_FUNC(c)      ((__u32)(c) & 0xff)		/* index in gpulat.FUNCTIONS */
#define COOKIE_SIZE_ARG(c)  (((c) >> 8) & 0xf)		/* 1-based size argument, 0: none */
#define COOKIE_SYNC         (1ULL << 12)		/* a synchronisation call */

/* Keys of `waits`: what a thread inside a sync call waited for. */
#define WAIT_RUNQ   0
#define WAIT_OFFCPU 1

const volatile bool targ_ms = false;
const volatile bool use_task_storage = true;
const volatile char targ_comm[TASK_COMM_LEN] = {};	/* --comm: the process's name */

struct frame {
	__u64 ts;
	__u64 bytes;
	__u64 cookie;
};

struct thread {
	struct frame frames[MAX_DEPTH];
	__u32 depth;		/* frames in use */
	__u32 overflow;		/* calls nested deeper than MAX_DEPTH, not timed */
	__u32 sync_depth;	/* frames that are sync calls: > 0 means "inside a sync call" */
	__u32 ioctl_cmd;
	__u64 ioctl_ts;		/* 0 unless inside an NVIDIA ioctl */
	__u64 off_ts;		/* switched out inside a sync call */
	__u64 runq_ts;		/* runnable (woken or preempted) inside a sync call */
	char ioctl_node[NODE_LEN];
};

struct call_key {
	__u32 tgid;
	__u32 func;
};

struct call_val {
	struct hist h;
	__u64 bytes;
	char comm[TASK_COMM_LEN];
};

struct ioctl_key {
	__u32 tgid;
	__u32 cmd;
	char node[NODE_LEN];
};

struct ioctl_val {
	struct hist h;
	__u64 errors;
	char comm[TASK_COMM_LEN];
};

struct wait_key {
	__u32 tgid;
	__u32 what;
};

struct wait_val {
	struct hist h;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct thread);
} threads_by_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct call_key);
	__type(value, struct call_val);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ioctl_key);
	__type(value, struct ioctl_val);
} ioctls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct wait_key);
	__type(value, struct wait_val);
} waits SEC(".maps");

static const struct thread zero_thread;
static const struct call_val zero_call;
static const struct ioctl_val zero_ioctl;
static const struct wait_val zero_wait;

static __always_inline __u64 to_units(__u64 ns)
{
	return targ_ms ? ns / 1000000 : ns / 1000;
}

/* --comm compares the process's name (its main thread's comm): worker threads of the same
 * process often rename themselves. */
static __always_inline bool comm_selected(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	char comm[TASK_COMM_LEN];

	if (!targ_comm[0])
		return true;
	if (bpf_probe_read_kernel_str(comm, sizeof(comm), BPF_CORE_READ(task, group_leader, comm)) < 0)
		return false;
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != targ_comm[i])
			return false;
		if (!comm[i])
			break;
	}
	return true;
}

/* --- per-thread state --- */

static __always_inline struct thread *current_thread(bool create)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (use_task_storage)
		return bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (create)
		return lookup_or_try_init(&threads_by_tid, &tid, &zero_thread);
	return bpf_map_lookup_elem(&threads_by_tid, &tid);
}

/* The hash fallback frees a thread's entry once it is in no traced call: threads come and go,
 * and the hash, unlike task storage, would fill up. */
static __always_inline void release_thread(struct thread *t)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (!use_task_storage && !t->depth && !t->overflow && !t->ioctl_ts)
		bpf_map_delete_elem(&threads_by_tid, &tid);
}

/* --- CUDA calls: one uprobe/uretprobe pair, told apart by cookie --- */

/* All four are read up front: a switch of loads gets merged by clang into one load at a
 * computed offset into ctx, which the verifier rejects. */
static __always_inline __u64 size_arg(struct pt_regs *ctx, __u64 cookie)
{
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx);
	__u64 a3 = PT_REGS_PARM3(ctx), a4 = PT_REGS_PARM4(ctx);
	__u32 n = COOKIE_SIZE_ARG(cookie);

	barrier_var(a1);
	barrier_var(a2);
	barrier_var(a3);
	barrier_var(a4);
	return n == 1 ? a1 : n == 2 ? a2 : n == 3 ? a3 : n == 4 ? a4 : 0;
}

static __always_inline void record_call(struct frame *f, __u64 now)
{
	struct call_key key = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.func = COOKIE_FUNC(f->cookie),
	};
	struct call_val *v = lookup_or_try_init(&calls, &key, &zero_call);

	if (!v)
		return;
	if (!v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	hist_add(&v->h, to_units(now - f->ts));
	if (f->bytes)
		__sync_fetch_and_add(&v->bytes, f->bytes);
}

SEC("uprobe")
int BPF_KPROBE(gpulat_call_entry)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct thread *t;
	__u32 d;

	if (!current_selected() || !comm_selected())
		return 0;
	t = current_thread(true);
	if (!t)
		return 0;
	d = t->depth;
	if (d >= MAX_DEPTH) {
		t->overflow++;
		return 0;
	}
	t->frames[d].cookie = cookie;
	t->frames[d].bytes = size_arg(ctx, cookie);
	t->frames[d].ts = bpf_ktime_get_ns();
	t->depth = d + 1;
	if (cookie & COOKIE_SYNC)
		t->sync_depth++;
	return 0;
}

/* Pops this function's frame. Returns pair with the innermost frame of the same function;
 * frames above it (a call whose return was never seen, e.g. one unwound by longjmp) are
 * dropped. A return without a frame (the call began before tracing did) is ignored. */
SEC("uretprobe")
int BPF_KRETPROBE(gpulat_call_return)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), now = bpf_ktime_get_ns();
	struct thread *t = current_thread(false);
	int match = -1;

	if (!t)
		return 0;
	if (t->overflow) {
		t->overflow--;
		return 0;
	}
	for (int i = MAX_DEPTH - 1; i >= 0; i--) {
		if (i < t->depth && t->frames[i].cookie == cookie) {
			match = i;
			break;
		}
	}
	if (match < 0)
		return 0;
	for (int i = MAX_DEPTH - 1; i >= 0; i--) {
		if (i >= match && i < t->depth && (t->frames[i].cookie & COOKIE_SYNC) && t->sync_depth)
			t->sync_depth--;
	}
	t->depth = match;
	record_call(&t->frames[match & (MAX_DEPTH - 1)], now);
	release_thread(t);
	return 0;
}

/* --- NVIDIA driver ioctls: fds whose node is named nvidia* or has the driver's major --- */

static __always_inline bool nvidia_node(int fd, char *node)
{
	struct file *file = current_fd_file(fd);
	struct inode *inode;
	const unsigned char *name;
	__u32 rdev;

	if (!file)
		return false;
	inode = BPF_CORE_READ(file, f_inode);
	if (!inode || (BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFCHR)
		return false;
	rdev = BPF_CORE_READ(inode, i_rdev);
	name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (!name || bpf_probe_read_kernel_str(node, NODE_LEN, name) < 0)
		node[0] = 0;
	return (rdev >> MINORBITS) == NVIDIA_MAJOR ||
	       (node[0] == 'n' && node[1] == 'v' && node[2] == 'i' && node[3] == 'd' &&
		node[4] == 'i' && node[5] == 'a');
}

SEC("tracepoint/syscalls/sys_enter_ioctl")
int gpulat_ioctl_enter(struct trace_event_raw_sys_enter *ctx)
{
	char node[NODE_LEN] = {};
	struct thread *t;

	if (current_is_self() || !current_selected() || !comm_selected())
		return 0;
	if (!nvidia_node((int)ctx->args[0], node))
		return 0;
	t = current_thread(true);
	if (!t)
		return 0;
	t->ioctl_cmd = (__u32)ctx->args[1];
	__builtin_memcpy(t->ioctl_node, node, NODE_LEN);
	t->ioctl_ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int gpulat_ioctl_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct ioctl_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct thread *t = current_thread(false);
	struct ioctl_val *v;
	__u64 delta;

	if (!t || !t->ioctl_ts)
		return 0;
	delta = bpf_ktime_get_ns() - t->ioctl_ts;
	t->ioctl_ts = 0;
	key.cmd = t->ioctl_cmd;
	__builtin_memcpy(key.node, t->ioctl_node, NODE_LEN);
	release_thread(t);
	v = lookup_or_try_init(&ioctls, &key, &zero_ioctl);
	if (!v)
		return 0;
	if (!v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	if (ctx->ret < 0)
		__sync_fetch_and_add(&v->errors, 1);
	hist_add(&v->h, to_units(delta));
	return 0;
}

/* --- scheduling of threads inside a sync call --- */

static __always_inline void record_wait(struct task_struct *task, __u32 what, __u64 ns)
{
	struct wait_key key = { .tgid = BPF_CORE_READ(task, tgid), .what = what };
	struct wait_val *v = lookup_or_try_init(&waits, &key, &zero_wait);

	if (!v)
		return;
	if (!v->comm[0])
		bpf_probe_read_kernel_str(v->comm, sizeof(v->comm), task->comm);
	hist_add(&v->h, to_units(ns));
}

/* prev leaves the CPU: blocked (off CPU until it runs again) or preempted (also runnable). */
static __always_inline void switch_out(bool preempt, struct task_struct *prev, struct thread *t,
				       __u64 now)
{
	if (!t || !t->sync_depth)
		return;
	t->off_ts = now;
	if (switch_state(preempt, prev) == TASK_RUNNING)
		t->runq_ts = now;
}

static __always_inline void switch_in(struct task_struct *next, struct thread *t, __u64 now)
{
	if (!t || !t->off_ts)
		return;
	record_wait(next, WAIT_OFFCPU, now - t->off_ts);
	t->off_ts = 0;
	if (t->runq_ts) {
		record_wait(next, WAIT_RUNQ, now - t->runq_ts);
		t->runq_ts = 0;
	}
}

static __always_inline void woken(struct thread *t)
{
	if (t && t->off_ts && !t->runq_ts)
		t->runq_ts = bpf_ktime_get_ns();
}

/* tp_btf: task storage, no hash lookup on the scheduler's hot path */

SEC("tp_btf/sched_switch")
int BPF_PROG(gpulat_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();

	switch_out(preempt, prev, bpf_task_storage_get(&threads, prev, 0, 0), now);
	switch_in(next, bpf_task_storage_get(&threads, next, 0, 0), now);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(gpulat_wakeup, struct task_struct *p)
{
	woken(bpf_task_storage_get(&threads, p, 0, 0));
	return 0;
}

/* raw_tp fallback: the tid-keyed hash */

static __always_inline struct thread *thread_by_tid(struct task_struct *task)
{
	__u32 tid = BPF_CORE_READ(task, pid);

	return bpf_map_lookup_elem(&threads_by_tid, &tid);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(gpulat_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();

	switch_out(preempt, prev, thread_by_tid(prev), now);
	switch_in(next, thread_by_tid(next), now);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(gpulat_wakeup_raw, struct task_struct *p)
{
	woken(thread_by_tid(p));
	return 0;
}
