// SPDX-License-Identifier: GPL-2.0
/* memleak: outstanding allocations, kept in the kernel by address with their size, time and
 * stack, and summed per stack (BCC's memleak).
 *
 * User mode (-p PID): uprobes on the target's libc allocators at entry (the size) and
 * uretprobes at return (the address; the user stack is taken there, as BCC does: at a
 * function's first instruction the frame-pointer walk would skip its caller), and free/munmap
 * at entry. glibc's allocators call each other (realloc(NULL, n) calls malloc, malloc calls
 * mmap for a large block, aligned_alloc and memalign are one function): only the outermost
 * traced call of a thread counts, so each block is counted once, with the caller's size.
 *
 * Kernel mode (no -p): kmem:kmalloc/kfree, kmem:kmem_cache_alloc/free and
 * kmem:mm_page_alloc/free(_batched) (pages keyed by page frame number), kernel stacks. */
#include "common.bpf.h"
#include "stacks.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PAGE_BYTES 4096

const volatile __u64 min_size = 0;
const volatile __u64 max_size = ~0ULL;
const volatile __u64 sample_rate = 1;	/* -s: one allocation in this many is recorded */

struct alloc_info {
	__u64 size;
	__u64 ts_ns;
	__s32 stack_id;
	__u32 pad;
};

struct combined_alloc_info {
	__s64 total_size;
	__s64 number_of_allocs;
};

/* Outstanding allocations by address (page frame number for pages). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, __u64);
	__type(value, struct alloc_info);
} allocs SEC(".maps");

/* The same summed per stack id, kept as blocks come and go (--combined-only). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct combined_alloc_info);
} combined_allocs SEC(".maps");

struct pending_alloc {
	__u32 depth;	/* traced allocator calls this thread is inside: only the outermost counts */
	bool skip;	/* left out by -z/-Z/-s */
	__u64 size;
	__u64 old;	/* realloc: the block it replaces */
	__u64 memptr;	/* posix_memalign: where the new pointer is written */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_alloc);
} pending SEC(".maps");

static __always_inline void combine(__s32 stack_id, __s64 size, __s64 count)
{
	__u64 key = (__u32)stack_id;
	struct combined_alloc_info zero = {}, *c;

	c = bpf_map_lookup_elem(&combined_allocs, &key);
	if (!c) {
		bpf_map_update_elem(&combined_allocs, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&combined_allocs, &key);
		if (!c)
			return;
	}
	__sync_fetch_and_add(&c->total_size, size);
	__sync_fetch_and_add(&c->number_of_allocs, count);
}

static __always_inline void free_addr(__u64 addr)
{
	struct alloc_info *info = bpf_map_lookup_elem(&allocs, &addr);

	if (!info)
		return;
	combine(info->stack_id, -(__s64)info->size, -1);
	bpf_map_delete_elem(&allocs, &addr);
}

static __always_inline void record(void *ctx, __u64 addr, __u64 size, bool user)
{
	struct alloc_info info = {.size = size, .ts_ns = bpf_ktime_get_ns()};

	info.stack_id = get_stack(ctx, user);
	/* a block at an address still recorded: its free was not seen (count it once) */
	free_addr(addr);
	if (bpf_map_update_elem(&allocs, &addr, &info, BPF_ANY))
		return;
	combine(info.stack_id, size, 1);
}

static __always_inline bool wanted(__u64 size)
{
	if (size < min_size || size > max_size)
		return false;
	return sample_rate <= 1 || bpf_ktime_get_ns() % sample_rate == 0;
}

/* --- user mode --- */

static __always_inline void alloc_enter(__u64 size, __u64 old, __u64 memptr)
{
	struct pending_alloc *p;

	if (current_is_self() || !current_selected())
		return;
	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return;
	if (p->depth++)
		return;	/* inside another traced allocator call: that one counts */
	p->size = size;
	p->old = old;
	p->memptr = memptr;
	p->skip = !wanted(size);
}

static __always_inline void alloc_exit(void *ctx, __u64 addr, bool from_memptr)
{
	struct pending_alloc *p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);

	if (!p || !p->depth || --p->depth)
		return;
	if (from_memptr) {	/* posix_memalign: 0 and the block through memptr, or an error */
		if (addr || bpf_probe_read_user(&addr, sizeof(addr), (void *)p->memptr))
			addr = 0;
	}
	if (addr == (__u64)-1)	/* mmap's MAP_FAILED */
		addr = 0;
	/* realloc frees the old block when it returns a new one, or when asked for 0 bytes */
	if (p->old && (addr || !p->size))
		free_addr(p->old);
	if (addr && !p->skip)
		record(ctx, addr, p->size, true);
}

SEC("uprobe")
int BPF_KPROBE(memleak_malloc_enter, size_t size)
{
	alloc_enter(size, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memleak_calloc_enter, size_t nmemb, size_t size)
{
	alloc_enter(nmemb * size, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memleak_realloc_enter, void *ptr, size_t size)
{
	alloc_enter(size, (__u64)ptr, 0);
	return 0;
}

/* aligned_alloc(alignment, size), memalign(alignment, size) */
SEC("uprobe")
int BPF_KPROBE(memleak_aligned_alloc_enter, size_t alignment, size_t size)
{
	alloc_enter(size, 0, 0);
	return 0;
}

/* valloc(size), pvalloc(size) */
SEC("uprobe")
int BPF_KPROBE(memleak_valloc_enter, size_t size)
{
	alloc_enter(size, 0, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memleak_posix_memalign_enter, void **memptr, size_t alignment, size_t size)
{
	alloc_enter(size, 0, (__u64)memptr);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memleak_mmap_enter, void *addr, size_t length)
{
	alloc_enter(length, 0, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(memleak_alloc_exit, void *ret)
{
	alloc_exit(ctx, (__u64)ret, false);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(memleak_posix_memalign_exit, int ret)
{
	alloc_exit(ctx, ret, true);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memleak_free_enter, void *ptr)
{
	if (ptr)
		free_addr((__u64)ptr);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memleak_munmap_enter, void *addr)
{
	free_addr((__u64)addr);
	return 0;
}

/* --- kernel mode --- */

static __always_inline void kernel_alloc(void *ctx, __u64 addr, __u64 size)
{
	if (!addr || current_is_self() || !current_selected() || !wanted(size))
		return;
	record(ctx, addr, size, false);
}

SEC("tracepoint/kmem/kmalloc")
int memleak_kmalloc(struct trace_event_raw_kmalloc *ctx)
{
	kernel_alloc(ctx, (__u64)ctx->ptr, ctx->bytes_alloc);
	return 0;
}

SEC("tracepoint/kmem/kmem_cache_alloc")
int memleak_kmem_cache_alloc(struct trace_event_raw_kmem_cache_alloc *ctx)
{
	kernel_alloc(ctx, (__u64)ctx->ptr, ctx->bytes_alloc);
	return 0;
}

SEC("tracepoint/kmem/mm_page_alloc")
int memleak_page_alloc(struct trace_event_raw_mm_page_alloc *ctx)
{
	kernel_alloc(ctx, ctx->pfn, (__u64)PAGE_BYTES << ctx->order);
	return 0;
}

/* frees are taken from every process and context: a block is often freed elsewhere */
SEC("tracepoint/kmem/kfree")
int memleak_kfree(struct trace_event_raw_kfree *ctx)
{
	free_addr((__u64)ctx->ptr);
	return 0;
}

SEC("tracepoint/kmem/kmem_cache_free")
int memleak_kmem_cache_free(struct trace_event_raw_kmem_cache_free *ctx)
{
	free_addr((__u64)ctx->ptr);
	return 0;
}

SEC("tracepoint/kmem/mm_page_free")
int memleak_page_free(struct trace_event_raw_mm_page_free *ctx)
{
	free_addr(ctx->pfn);
	return 0;
}

SEC("tracepoint/kmem/mm_page_free_batched")
int memleak_page_free_batched(struct trace_event_raw_mm_page_free_batched *ctx)
{
	free_addr(ctx->pfn);
	return 0;
}
