// SPDX-License-Identifier: GPL-2.0
/* reclaimlat: how long allocating tasks stall in reclaim, as log2 histograms per kind (global
 * direct reclaim, or memory-cgroup reclaim when a cgroup hits its limit) and optionally per
 * process, with the pages each kind reclaimed. Begin and end fire in the stalled task. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "task_start.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_per_process = false;
const volatile bool targ_ms = false;

#define KIND_DIRECT 0
#define KIND_MEMCG 1

struct reclaim_key {
	__u32 tgid;  /* 0 unless per process */
	__u32 kind;
};

struct reclaim_val {
	struct hist h;
	__u64 reclaimed;  /* pages, as the end tracepoint reports them */
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct reclaim_key);
	__type(value, struct reclaim_val);
} reclaims SEC(".maps");

static const struct reclaim_val zero_val;

static __always_inline void record(__u32 kind, __u64 start, unsigned long nr_reclaimed)
{
	struct reclaim_key key = {.kind = kind};
	struct reclaim_val *v;
	__u64 delta;

	if (!start)
		return;
	delta = bpf_ktime_get_ns() - start;
	if (targ_per_process)
		key.tgid = bpf_get_current_pid_tgid() >> 32;
	v = lookup_or_try_init(&reclaims, &key, &zero_val);
	if (!v)
		return;
	if (!v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	__sync_fetch_and_add(&v->reclaimed, nr_reclaimed);
	hist_add(&v->h, targ_ms ? delta / 1000000 : delta / 1000);
}

/* --- tp_btf: start time in task storage --- */

static __always_inline void begin(void)
{
	if (current_selected())
		task_start_set(bpf_get_current_task_btf(), bpf_ktime_get_ns());
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(reclaimlat_direct_begin, int order, gfp_t gfp)
{
	begin();
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(reclaimlat_direct_end, unsigned long nr_reclaimed)
{
	record(KIND_DIRECT, task_start_take(bpf_get_current_task_btf()), nr_reclaimed);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(reclaimlat_memcg_begin, int order, gfp_t gfp)
{
	begin();
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(reclaimlat_memcg_end, unsigned long nr_reclaimed)
{
	record(KIND_MEMCG, task_start_take(bpf_get_current_task_btf()), nr_reclaimed);
	return 0;
}

/* --- raw_tp fallback: tid-keyed hash --- */

static __always_inline void begin_raw(void)
{
	if (current_selected())
		tid_start_set((__u32)bpf_get_current_pid_tgid(), bpf_ktime_get_ns());
}

SEC("raw_tp/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(reclaimlat_direct_begin_raw, int order, gfp_t gfp)
{
	begin_raw();
	return 0;
}

SEC("raw_tp/mm_vmscan_direct_reclaim_end")
int BPF_PROG(reclaimlat_direct_end_raw, unsigned long nr_reclaimed)
{
	record(KIND_DIRECT, tid_start_take((__u32)bpf_get_current_pid_tgid()), nr_reclaimed);
	return 0;
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(reclaimlat_memcg_begin_raw, int order, gfp_t gfp)
{
	begin_raw();
	return 0;
}

SEC("raw_tp/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(reclaimlat_memcg_end_raw, unsigned long nr_reclaimed)
{
	record(KIND_MEMCG, tid_start_take((__u32)bpf_get_current_pid_tgid()), nr_reclaimed);
	return 0;
}
