// SPDX-License-Identifier: GPL-2.0
/* cachestat: page cache accesses, additions (misses) and dirtied pages, counted in pages in a
 * per-CPU array. Without kprobes on mark_page_accessed/add_to_page_cache there is no exact
 * per-page access count; tracepoints give an approximation:
 *  - accesses: mm_filemap_get_pages (the page range one read() asks the cache for, cut at
 *    end of file; filemap_read calls it again for the rest of a long read with the same end,
 *    and such continuations are not counted twice), mm_filemap_fault (one page per fault) and
 *    mm_filemap_map_pages (the fault-around range, cut at end of file);
 *  - additions: mm_filemap_add_to_page_cache, whose classic tracepoint carries the folio
 *    order (so large folios count all their pages);
 *  - dirtied: writeback_dirty_folio, one folio each, sized from the folio. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 page_shift = 12;  /* set from the running system's page size */

enum { ACCESSED, ADDED, DIRTIED, NR_COUNTS };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* The last range a thread asked the page cache for, to recognise the continuation calls of
 * one long read. */
struct read_cursor {
	struct address_space *mapping;
	__u64 index;
	__u64 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct read_cursor);
} cursors SEC(".maps");

static __always_inline void count(__u32 what, __u64 pages)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &what);

	if (n)
		*n += pages;
}

/* Pages index..last of mapping that lie within the file (0 if none). */
static __always_inline __u64 pages_in_file(struct address_space *mapping, __u64 index,
					   __u64 last)
{
	loff_t size = BPF_CORE_READ(mapping, host, i_size);
	__u64 eof_page;

	if (size <= 0)
		return 0;
	eof_page = (size - 1) >> page_shift;
	if (last > eof_page)
		last = eof_page;
	return last >= index ? last - index + 1 : 0;
}

static __always_inline void read_access(struct address_space *mapping, __u64 index, __u64 last)
{
	struct read_cursor *c;

	if (!current_selected())
		return;
	c = bpf_task_storage_get(&cursors, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return;
	if (!(c->mapping == mapping && c->last == last && index > c->index))
		count(ACCESSED, pages_in_file(mapping, index, last));
	c->mapping = mapping;
	c->index = index;
	c->last = last;
}

static __always_inline void map_access(struct address_space *mapping, __u64 index, __u64 last)
{
	if (current_selected())
		count(ACCESSED, pages_in_file(mapping, index, last));
}

/* folio_nr_pages(): 1, or for a large folio (PG_head set) its page count. */
static __always_inline __u64 folio_pages(struct folio *folio)
{
	unsigned long flags = 0;

	bpf_probe_read_kernel(&flags, sizeof(flags), folio);  /* page->flags comes first */
	if (!(flags & (1UL << bpf_core_enum_value(enum pageflags, PG_head))))
		return 1;
	if (bpf_core_field_exists(folio->_nr_pages))
		return BPF_CORE_READ(folio, _nr_pages);
	return 1UL << (BPF_CORE_READ(folio, _flags_1) & 0xff);
}

static __always_inline void dirtied(struct folio *folio)
{
	if (current_selected())
		count(DIRTIED, folio_pages(folio));
}

BTF_TP(mm_filemap_get_pages, cachestat_get_pages, struct address_space *mapping,
       unsigned long index, unsigned long last)
{
	read_access(mapping, index, last);
	return 0;
}

BTF_TP(mm_filemap_fault, cachestat_fault, struct address_space *mapping, unsigned long index)
{
	map_access(mapping, index, index);
	return 0;
}

BTF_TP(mm_filemap_map_pages, cachestat_map_pages, struct address_space *mapping,
       unsigned long index, unsigned long last)
{
	map_access(mapping, index, last);
	return 0;
}

SEC("tracepoint/filemap/mm_filemap_add_to_page_cache")
int cachestat_add(struct trace_event_raw_mm_filemap_op_page_cache *ctx)
{
	if (current_selected())
		count(ADDED, 1UL << ctx->order);
	return 0;
}

BTF_TP(writeback_dirty_folio, cachestat_dirty, struct folio *folio)
{
	dirtied(folio);
	return 0;
}
