// SPDX-License-Identifier: GPL-2.0
/* bigallocs: page allocations of order >= targ_min_order counted by the allocating process and
 * order. mm_page_alloc fires for every page the buddy allocator hands out, so the counters are
 * per-CPU (no atomic, no shared cache line) and user space sums them. */
#include "common.bpf.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_min_order = 1;

struct alloc_key {
	__u32 tgid;
	__u32 order;
};

struct alloc_val {
	__u64 count;   /* successful allocations */
	__u64 failed;  /* the tracepoint also fires, with no page, when an allocation fails */
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct alloc_key);
	__type(value, struct alloc_val);
} allocs SEC(".maps");

static const struct alloc_val zero_val;

static __always_inline void count_alloc(struct page *page, unsigned int order)
{
	struct alloc_key key;
	struct alloc_val *v;

	if (order < targ_min_order || !current_selected())
		return;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.order = order;
	v = lookup_or_try_init(&allocs, &key, &zero_val);
	if (!v)
		return;
	if (page)
		v->count++;
	else
		v->failed++;
	if (!v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
}

BTF_TP(mm_page_alloc, bigallocs_page_alloc, struct page *page, unsigned int order, gfp_t gfp,
       int mt)
{
	count_alloc(page, order);
	return 0;
}
