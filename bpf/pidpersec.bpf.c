// SPDX-License-Identifier: GPL-2.0
/* pidpersec: new tasks (fork, clone, threads included) per interval (BCC's pidpersec), counted at
 * sched_process_fork in a per-CPU counter: no lock, no atomic. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} forks SEC(".maps");

BTF_TP(sched_process_fork, pidpersec_fork, struct task_struct *parent,
       struct task_struct *child)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&forks, &zero);

	if (n)
		*n += 1;  /* a program does not nest on its CPU: exact */
	return 0;
}
