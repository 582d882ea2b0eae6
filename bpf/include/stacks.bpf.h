/* Stack collection shared by profile and offcputime: one stack-trace map for kernel and user
 * stacks, a per-CPU count of stacks that could not be stored (shown to the user, so nothing is
 * lost silently), and a "new process" note on the ring buffer so user space snapshots
 * /proc/PID/maps while the process is still alive (it may have exited by symbolization time). */
#ifndef BPFSIGHT_STACKS_BPF_H
#define BPFSIGHT_STACKS_BPF_H

#include "common.bpf.h"
#include "events.bpf.h"
#include "maps.bpf.h"
#include "stacks.h"

#define PF_KTHREAD 0x00200000
#define EFAULT 14
#define EEXIST 17

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, 16384);  /* --stack-storage-size */
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STACK_ERR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stack_errors SEC(".maps");

/* Processes already announced to user space (LRU: a long system-wide run must not fill it). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} seen_tgids SEC(".maps");

static __always_inline void count_error(__u32 idx)
{
	__u64 *n = bpf_map_lookup_elem(&stack_errors, &idx);

	if (n)
		*n += 1;
}

/* The id of the current kernel or user stack in stackmap; on failure the negative errno,
 * counted by cause. */
static __always_inline __s32 get_stack(void *ctx, bool user)
{
	long id = bpf_get_stackid(ctx, &stackmap, user ? BPF_F_USER_STACK : 0);
	__u32 base = user ? ERR_USER_EEXIST : ERR_KERN_EEXIST;

	if (id >= 0)
		return id;
	if (id == -EEXIST)
		count_error(base);
	else if (id == -EFAULT)
		count_error(base + 1);
	else
		count_error(base + 2);
	return id;
}

static __always_inline bool is_kthread(struct task_struct *t)
{
	return BPF_CORE_READ(t, flags) & PF_KTHREAD;
}

/* Tell user space about a process the first time one of its stacks is recorded. */
static __always_inline void note_process(__u32 tgid)
{
	__u8 one = 1;

	if (bpf_map_lookup_elem(&seen_tgids, &tgid))
		return;
	if (bpf_map_update_elem(&seen_tgids, &tgid, &one, BPF_NOEXIST))
		return;
	emit_event(&tgid, sizeof(tgid));
}

#endif
