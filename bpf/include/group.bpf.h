/* The exporter's key: what it exports per process (its comm and its cgroup v2 id), not a pid.
 * Keyed by pid, every short-lived process made a key: under a fork/exec loop the maps filled,
 * were drained every few scrapes and each scrape decoded thousands of dead pids in Python (issue
 * 19). Keyed by label set, churn adds to a few keys. The value keeps the last tgid seen, from
 * which user space names the cgroup (/proc/PID/cgroup, as relative as the exporter's own
 * cgroup namespace makes it). Tools leave targ_by_group off and their maps keyed as before; the
 * exporter resizes the group map (declared with one slot) before load. */
#ifndef BPFSIGHT_GROUP_BPF_H
#define BPFSIGHT_GROUP_BPF_H

#include "common.bpf.h"

struct group_key {
	__u64 cgroup_id;
	char comm[TASK_COMM_LEN];  /* the process's (its group leader's), not a thread's name */
	__u32 kind;                /* the tool's own split: a thread state, a lock kind; else 0 */
	__u32 pad;
};

const volatile bool targ_by_group = false;

/* A tool's map of the exporter's keys, declared with one slot (the exporter resizes it). */
#define GROUP_MAP(name, value_type)				\
struct {							\
	__uint(type, BPF_MAP_TYPE_HASH);			\
	__uint(max_entries, 1);					\
	__type(key, struct group_key);				\
	__type(value, value_type);				\
} name SEC(".maps")

static __always_inline void group_key_of(struct task_struct *t, __u32 kind,
					 struct group_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->cgroup_id = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_STR_INTO(&k->comm, t, group_leader, comm);
	k->kind = kind;
}

#endif
