/* Log2 histograms keyed by process (tgid), thread (tid) or nothing (key 0), each with the
 * task's comm for the label: the shape of runqlat/cpudist-style -P / -L output. User side:
 * bpfsight.report.keyed. */
#ifndef BPFSIGHT_COMM_HIST_BPF_H
#define BPFSIGHT_COMM_HIST_BPF_H

#include "common.bpf.h"
#include "maps.bpf.h"

struct comm_hist {
	struct hist h;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct comm_hist);
} hists SEC(".maps");

static const struct comm_hist zero_comm_hist;

/* Add value to t's histogram: per process, per thread, or one for all. */
static __always_inline void comm_hist_add(struct task_struct *t, bool per_process,
					  bool per_thread, __u64 value)
{
	struct comm_hist *v;
	__u32 key = 0;

	if (per_process)
		key = BPF_CORE_READ(t, tgid);
	else if (per_thread)
		key = BPF_CORE_READ(t, pid);
	v = lookup_or_try_init(&hists, &key, &zero_comm_hist);
	if (!v)
		return;
	if (key && !v->comm[0])
		bpf_probe_read_kernel_str(v->comm, sizeof(v->comm), t->comm);
	hist_add(&v->h, value);
}

#endif
