/* A start timestamp per task, for tools that time an interval which begins and ends in the
 * same task (a syscall, an on- or off-CPU slice). tp_btf programs keep it in task storage: no
 * hash to size or fill up, and it is freed with the task. raw_tp twins, for kernels without
 * BTF-typed tracepoints (and so without task storage), use a tid-keyed hash instead; user space
 * shrinks whichever map goes unused (bpfsight.tools._sched.use_task_storage). */
#ifndef BPFSIGHT_TASK_START_BPF_H
#define BPFSIGHT_TASK_START_BPF_H

#include "common.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} task_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} tid_start SEC(".maps");

static __always_inline void task_start_set(struct task_struct *t, __u64 ts)
{
	__u64 *p = bpf_task_storage_get(&task_start, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (p)
		*p = ts;
}

/* The start recorded for t, cleared so that an interval is counted once; 0 when none. */
static __always_inline __u64 task_start_take(struct task_struct *t)
{
	__u64 *p = bpf_task_storage_get(&task_start, t, 0, 0);
	__u64 ts;

	if (!p)
		return 0;
	ts = *p;
	*p = 0;
	return ts;
}

static __always_inline void tid_start_set(__u32 tid, __u64 ts)
{
	bpf_map_update_elem(&tid_start, &tid, &ts, BPF_ANY);
}

static __always_inline __u64 tid_start_take(__u32 tid)
{
	__u64 *p = bpf_map_lookup_elem(&tid_start, &tid);
	__u64 ts;

	if (!p)
		return 0;
	ts = *p;
	bpf_map_delete_elem(&tid_start, &tid);
	return ts;
}

#endif
