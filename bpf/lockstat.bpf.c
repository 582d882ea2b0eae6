// SPDX-License-Identifier: GPL-2.0
/* lockstat: time tasks wait for locks. Kernel locks from lock:contention_begin/end (what perf
 * lock contention uses); user-space mutexes from futex wait syscalls (FUTEX_WAIT*, FUTEX_LOCK_PI*
 * and futex_wait(2)), which is where a contended pthread mutex sleeps. Aggregated by caller stack
 * (default), by lock address (-a) or by thread (-t), with count, total and maximum wait. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "stacks.bpf.h"
#include "pyframes.bpf.h"
#include "group.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define BY_CALLER 0
#define BY_ADDR 1
#define BY_THREAD 2

#define KIND_KERNEL 0
#define KIND_FUTEX 1

/* uapi/linux/futex.h */
#define FUTEX_WAIT 0
#define FUTEX_LOCK_PI 6
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAIT_REQUEUE_PI 11
#define FUTEX_LOCK_PI2 13
#define FUTEX_CMD_MASK 0x7f  /* less FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME */
#define FUTEX2_OP 0xff       /* marks futex_wait(2) in the key's flags */

const volatile __u32 targ_by = BY_CALLER;
const volatile bool targ_kernel = true;
const volatile bool targ_futex = true;
const volatile bool targ_python = false;  /* walk CPython frames of processes in py_procs */

struct wait_start {
	__u64 ts;
	__u64 addr;
	__s32 stack_id;
	__u32 flags;
	__u32 active;
	__u32 py_gil_wait;   /* the futex word is the interpreter lock's */
	__u64 py_stack_id;   /* the CPython frames that waited (pyframes.bpf.h); 0: none */
};

struct lock_key {
	__u64 addr;      /* BY_ADDR only */
	__s32 stack_id;  /* BY_CALLER only: kernel stack (kernel locks) or user stack (futex) */
	__u32 id;        /* tgid for futex waits; tid with BY_THREAD; else 0 */
	__u32 kind;
	__u32 flags;     /* kernel: LCB_F_* of the lock; futex: the wait operation */
	__u32 py_gil_wait;   /* a wait to take the CPython interpreter lock (GIL) */
	__u32 pad;
	__u64 py_stack_id;   /* BY_CALLER: the Python frames that waited */
};

struct lock_val {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	char comm[TASK_COMM_LEN];
};

/* Where a wait began: task storage for tp_btf programs; an LRU hash by thread id for their
 * raw_tp twins and for the futex syscalls (LRU: an exited thread's slot is simply reused). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wait_start);
} lock_task_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct wait_start);
} lock_tid_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct wait_start);
} futex_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct lock_key);
	__type(value, struct lock_val);
} waits SEC(".maps");

/* The exporter's: waits per comm, cgroup and kind (group.bpf.h) */
struct group_waits {
	__u64 count;
	__u64 total_ns;
	__u32 pid;
	__u32 pad;
};

GROUP_MAP(group_waits, struct group_waits);

static const struct wait_start zero_start;
static const struct lock_val zero_val;
static const struct group_waits zero_group;

static __always_inline struct wait_start *tid_slot(void *map, bool create)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (create)
		bpf_map_update_elem(map, &tid, &zero_start, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, &tid);
}

static __always_inline struct wait_start *lock_slot(bool btf, bool create)
{
	if (btf)
		return bpf_task_storage_get(&lock_task_starts, bpf_get_current_task_btf(), 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	return tid_slot(&lock_tid_starts, create);
}

static __always_inline void begin(void *ctx, struct wait_start *s, __u64 addr, __u32 flags,
				  bool user)
{
	s->addr = addr;
	s->flags = flags;
	s->stack_id = targ_by == BY_CALLER ? get_stack(ctx, user) : STACK_NONE;
	s->py_gil_wait = 0;
	s->py_stack_id = 0;
	s->active = 1;
	s->ts = bpf_ktime_get_ns();
}

static __always_inline void end(struct wait_start *s, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid(), delta = bpf_ktime_get_ns() - s->ts;
	struct lock_key key = {.kind = kind, .flags = s->flags, .stack_id = STACK_NONE};
	struct lock_val *v;

	s->active = 0;
	if (targ_by_group) {
		struct group_key gk;
		struct group_waits *g;

		group_key_of((struct task_struct *)bpf_get_current_task(), kind, &gk);
		g = lookup_or_try_init(&group_waits, &gk, &zero_group);
		if (g) {
			g->pid = id >> 32;
			__sync_fetch_and_add(&g->count, 1);
			__sync_fetch_and_add(&g->total_ns, delta);
		}
		return;
	}
	if (targ_by == BY_THREAD)
		key.id = (__u32)id;
	else if (kind == KIND_FUTEX)
		key.id = id >> 32;  /* user addresses and stacks mean something only per process */
	if (targ_by == BY_ADDR)
		key.addr = s->addr;
	if (targ_by == BY_CALLER) {
		key.stack_id = s->stack_id;
		key.py_stack_id = s->py_stack_id;
	}
	key.py_gil_wait = s->py_gil_wait;
	v = lookup_or_try_init(&waits, &key, &zero_val);
	if (!v) {
		count_error(ERR_COUNTS_FULL);
		return;
	}
	if (!v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, delta);
	if (delta > v->max_ns)
		v->max_ns = delta;  /* racy by design: a lost update only understates one max */
}

/* --- kernel locks --- */

static __always_inline void contention_begin(void *ctx, void *lock, __u32 flags, bool btf)
{
	struct wait_start *s;

	if (!targ_kernel || !current_selected())
		return;
	s = lock_slot(btf, true);
	/* a nested begin (a sleeping lock's optimistic spin, then its sleep) is the same wait */
	if (!s || s->active)
		return;
	begin(ctx, s, (__u64)lock, flags, false);
}

static __always_inline void contention_end(void *lock, bool btf)
{
	struct wait_start *s = lock_slot(btf, false);

	if (s && s->active && s->addr == (__u64)lock)
		end(s, KIND_KERNEL);
}

SEC("tp_btf/contention_begin")
int BPF_PROG(lockstat_contention_begin, void *lock, unsigned int flags)
{
	contention_begin(ctx, lock, flags, true);
	return 0;
}

SEC("tp_btf/contention_end")
int BPF_PROG(lockstat_contention_end, void *lock, int ret)
{
	contention_end(lock, true);
	return 0;
}

SEC("raw_tp/contention_begin")
int BPF_PROG(lockstat_contention_begin_raw, void *lock, unsigned int flags)
{
	contention_begin(ctx, lock, flags, false);
	return 0;
}

SEC("raw_tp/contention_end")
int BPF_PROG(lockstat_contention_end_raw, void *lock, int ret)
{
	contention_end(lock, false);
	return 0;
}

/* --- user mutexes: futex waits --- */

static __always_inline bool is_wait(int op)
{
	int cmd = op & FUTEX_CMD_MASK;

	return cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET || cmd == FUTEX_LOCK_PI ||
	       cmd == FUTEX_LOCK_PI2 || cmd == FUTEX_WAIT_REQUEUE_PI;
}

static __always_inline void futex_enter(void *ctx, __u64 uaddr, __u32 op)
{
	struct wait_start *s;

	if (!targ_futex || current_is_self() || !current_selected())
		return;
	s = tid_slot(&futex_starts, true);
	if (s) {
		__u64 id = bpf_get_current_pid_tgid();
		__u32 gil;

		note_process(id >> 32);
		begin(ctx, s, uaddr, op, true);
		if (targ_python) {
			s->py_gil_wait = py_is_gil_word(id >> 32, uaddr);
			if (targ_by == BY_CALLER)
				s->py_stack_id = py_stack_of(id >> 32, (__u32)id, &gil);
		}
	}
}

static __always_inline void futex_exit(void)
{
	struct wait_start *s = tid_slot(&futex_starts, false);

	if (s && s->active)
		end(s, KIND_FUTEX);
}

SEC("tracepoint/syscalls/sys_enter_futex")
int lockstat_futex_enter(struct trace_event_raw_sys_enter *ctx)
{
	int op = (int)ctx->args[1];

	if (is_wait(op))
		futex_enter(ctx, ctx->args[0], op & FUTEX_CMD_MASK);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_futex")
int lockstat_futex_exit(struct trace_event_raw_sys_exit *ctx)
{
	futex_exit();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_futex_wait")
int lockstat_futex2_enter(struct trace_event_raw_sys_enter *ctx)
{
	futex_enter(ctx, ctx->args[0], FUTEX2_OP);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_futex_wait")
int lockstat_futex2_exit(struct trace_event_raw_sys_exit *ctx)
{
	futex_exit();
	return 0;
}
