// SPDX-License-Identifier: GPL-2.0
/* The baseline for bpfsight's aggregating tools: the same map work as each tool's default mode,
 * with nothing else (no pid/cgroup/self filters, no options, no raw_tp twins). Loaded by
 * loader.c, a minimal libbpf program. The log2 helper and histogram layout are bpfsight's own
 * (bpf/include), so the histogram work is identical. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"
#include "hist.h"

char LICENSE[] SEC("license") = "GPL";

static const struct hist zero_hist;

static __always_inline void *lookup_or_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

static __always_inline void hist_add(struct hist *h, __u64 value)
{
	__u64 slot = log2_u64(value);

	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->total, value);
}

/* --- syscount: per-CPU counts in an array indexed by syscall number, counted at exit --- */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} sys_counts SEC(".maps");

SEC("tp_btf/sys_exit")
int BPF_PROG(min_syscount, struct pt_regs *regs, long ret)
{
	__u32 nr = regs->orig_ax;
	__u64 *n = bpf_map_lookup_elem(&sys_counts, &nr);

	if (n)
		(*n)++;
	return 0;
}

/* --- runqlat: the growth of sched_info.run_delay between switch-outs (baseline at a task's
 * first switch-in), one histogram in a one-slot array --- */

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} runq_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} runq_hist SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(min_runq_delay, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 *seen;
	__u32 key = 0;
	struct hist *h;

	if (next->pid && !bpf_task_storage_get(&runq_seen, next, 0, 0)) {
		seen = bpf_task_storage_get(&runq_seen, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (seen)
			*seen = next->sched_info.run_delay + 1;
	}
	if (!prev->pid)
		return 0;
	seen = bpf_task_storage_get(&runq_seen, prev, 0, 0);
	h = bpf_map_lookup_elem(&runq_hist, &key);
	if (!seen || !*seen || !h)
		return 0;
	hist_add(h, (prev->sched_info.run_delay - (*seen - 1)) / 1000);
	*seen = prev->sched_info.run_delay + 1;
	return 0;
}

/* --- biolatency: issue time in a hash keyed by request, one histogram in a hash --- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, __u64);
} bio_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, struct hist);
} bio_hist SEC(".maps");

SEC("tp_btf/block_rq_issue")
int BPF_PROG(min_bio_issue, struct request *rq)
{
	__u64 ts = bpf_ktime_get_ns();

	bpf_map_update_elem(&bio_start, &rq, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(min_bio_complete, struct request *rq)
{
	__u64 key = 0, *ts;
	struct hist *h;

	ts = bpf_map_lookup_elem(&bio_start, &rq);
	if (!ts)
		return 0;
	h = lookup_or_init(&bio_hist, &key, &zero_hist);
	if (h)
		hist_add(h, (bpf_ktime_get_ns() - *ts) / 1000);
	bpf_map_delete_elem(&bio_start, &rq);
	return 0;
}

/* --- the floor: empty programs on the same hooks, what attaching anything there costs --- */

SEC("tp_btf/sys_exit")
int BPF_PROG(empty_sys_exit)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(empty_switch)
{
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(empty_bio_issue)
{
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(empty_bio_complete)
{
	return 0;
}
