/* Map helpers shared by the tools. */
#ifndef BPFSIGHT_MAPS_BPF_H
#define BPFSIGHT_MAPS_BPF_H

#include <bpf/bpf_helpers.h>
#include "bits.bpf.h"
#include "hist.h"

/* Inserts lookup_or_try_init could not make because the map was full (E2BIG, or ENOMEM for
 * maps without preallocation): each is a sample lost. Per CPU, summed by user space
 * (bpfsight.exporter reports it as bpfsight_map_full_total). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} map_full SEC(".maps");

static __always_inline void count_map_full(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&map_full, &zero);

	if (n)
		*n += 1;
}

/* Look a key up, inserting init first when it is missing (two CPUs may race: BPF_NOEXIST
 * makes the loser's insert fail harmlessly and both then see the same element). */
static __always_inline void *lookup_or_try_init(void *map, const void *key, const void *init)
{
	void *val = bpf_map_lookup_elem(map, key);
	long err;

	if (val)
		return val;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST */) {
		count_map_full();
		return 0;
	}
	return bpf_map_lookup_elem(map, key);
}

/* Add value to a log2 histogram; the slot is clamped so huge values land in the last one. */
static __always_inline void hist_add(struct hist *h, __u64 value)
{
	__u64 slot = log2_u64(value);

	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->total, value);
}

#endif
