// SPDX-License-Identifier: GPL-2.0
/* slabratetop: kernel slab allocations per cache, counted in the kernel (BCC's slabratetop,
 * which kprobes kmem_cache_alloc): kmem:kmem_cache_alloc names the cache; kmem:kmalloc has
 * no cache, so its allocations count under the size class of what it allocated
 * (kmalloc-BYTES_ALLOC, the kmalloc-N caches' names). */
#include "common.bpf.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define NAME_LEN 32

struct cache_key {
	char name[NAME_LEN];
};

struct cache_val {
	__u64 count;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct cache_key);
	__type(value, struct cache_val);
} caches SEC(".maps");

/* kmalloc's allocations have a size class, not a cache: user space names it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);  /* bytes_alloc */
	__type(value, struct cache_val);
} kmalloc_sizes SEC(".maps");

static __always_inline void add(struct cache_val *v, __u64 bytes)
{
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		__sync_fetch_and_add(&v->bytes, bytes);
	}
}

BTF_TP(kmem_cache_alloc, slabratetop_cache, unsigned long call_site, const void *ptr,
       struct kmem_cache *s, gfp_t gfp_flags, int node)
{
	struct cache_key key = {};
	struct cache_val zero = {};

	if (!ptr || current_is_self() || !current_selected())
		return 0;
	bpf_probe_read_kernel_str(key.name, sizeof(key.name), BPF_CORE_READ(s, name));
	add(lookup_or_try_init(&caches, &key, &zero), BPF_CORE_READ(s, size));
	return 0;
}

BTF_TP(kmalloc, slabratetop_kmalloc, unsigned long call_site, const void *ptr,
       size_t bytes_req, size_t bytes_alloc, gfp_t gfp_flags, int node)
{
	struct cache_val zero = {};
	__u64 size = bytes_alloc;

	if (!ptr || current_is_self() || !current_selected())
		return 0;
	add(lookup_or_try_init(&kmalloc_sizes, &size, &zero), bytes_alloc);
	return 0;
}
