/* Syscall arguments kept at entry and taken at exit, where the result is known (opensnoop,
 * killsnoop, statsnoop, mountsnoop, solisten): in task storage, so there is no per-thread hash
 * to clean up. A tool's pending struct starts with `bool active`. */
#ifndef BPFSIGHT_PENDING_BPF_H
#define BPFSIGHT_PENDING_BPF_H

#include "common.bpf.h"

#define PENDING_MAP(value_type)					\
struct {							\
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);		\
	__uint(map_flags, BPF_F_NO_PREALLOC);			\
	__type(key, int);					\
	__type(value, value_type);				\
} pending SEC(".maps")

/* The current task's entry, marked active; NULL for a task the -p/-c filter leaves out (or
 * bpfsight itself). */
static __always_inline void *pending_start(void *map)
{
	bool *active;

	if (current_is_self() || !current_selected())
		return 0;
	active = bpf_task_storage_get(map, bpf_get_current_task_btf(), 0,
				      BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (active)
		*active = true;
	return active;
}

/* The current task's active entry, now taken; NULL when its entry was not seen. */
static __always_inline void *pending_take(void *map)
{
	bool *active = bpf_task_storage_get(map, bpf_get_current_task_btf(), 0, 0);

	if (!active || !*active)
		return 0;
	*active = false;
	return active;
}

#endif
