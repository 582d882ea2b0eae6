/* Log2 histograms keyed by process (tgid), thread (tid) or nothing (key 0), each with the
 * task's comm for the label: the shape of runqlat/cpudist-style -P / -L output. User side:
 * bpfsight.report.keyed.
 *
 * The map is a one-slot array, whose lookup the verifier inlines (a hash lookup is a helper
 * call and a walk, ~20 ns on every sched_switch); with -P / -L user space turns it into a hash
 * keyed by tgid or tid before load (keyed.keyed_histograms). */
#ifndef BPFSIGHT_COMM_HIST_BPF_H
#define BPFSIGHT_COMM_HIST_BPF_H

#include "common.bpf.h"
#include "maps.bpf.h"
#include "group.bpf.h"

struct comm_hist {
	struct hist h;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct comm_hist);
} hists SEC(".maps");

static const struct comm_hist zero_comm_hist;

/* The exporter's: a histogram per comm and cgroup (group.bpf.h) */
struct group_hist {
	struct hist h;
	__u32 pid;
	__u32 pad;
};

GROUP_MAP(group_hists, struct group_hist);

static const struct group_hist zero_group_hist;

/* -P, -L and -m of the tools that include this */
const volatile bool targ_per_process = false;
const volatile bool targ_per_thread = false;
const volatile bool targ_ms = false;

/* Add delta_ns, in µs (ms with -m), to t's histogram: per process, per thread, or one for
 * all. */
static __always_inline void comm_hist_record(struct task_struct *t, __u64 delta_ns)
{
	__u64 value = targ_ms ? delta_ns / 1000000 : delta_ns / 1000;
	struct comm_hist *v;
	__u32 key = 0;

	if (targ_by_group) {
		struct group_key gk;
		struct group_hist *g;

		group_key_of(t, 0, &gk);
		g = lookup_or_try_init(&group_hists, &gk, &zero_group_hist);
		if (g) {
			g->pid = BPF_CORE_READ(t, tgid);
			hist_add(&g->h, value);
		}
		return;
	}
	if (targ_per_process)
		key = BPF_CORE_READ(t, tgid);
	else if (targ_per_thread)
		key = BPF_CORE_READ(t, pid);
	v = lookup_or_try_init(&hists, &key, &zero_comm_hist);
	if (!v)
		return;
	if (key && !v->comm[0])
		bpf_probe_read_kernel_str(v->comm, sizeof(v->comm), t->comm);
	hist_add(&v->h, value);
}

#endif
