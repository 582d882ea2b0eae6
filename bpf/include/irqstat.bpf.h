/* What hardirqs and softirqs share: a per-CPU entry timestamp (handlers of one kind do not
 * nest on a CPU: hard irq handlers run with interrupts off, a softirq never interrupts
 * another), and per-key statistics kept in per-CPU hashes, so an interrupt handler's program
 * takes no lock and no atomic. User side: bpfsight.tools._irqs. */
#ifndef BPFSIGHT_IRQSTAT_BPF_H
#define BPFSIGHT_IRQSTAT_BPF_H

#include "common.bpf.h"
#include "hist.h"
#include "bits.bpf.h"

const volatile bool targ_dist = false;  /* keep a latency histogram as well */
const volatile bool targ_ns = false;    /* histogram in nanoseconds, not microseconds */
const volatile int targ_cpu = -1;       /* -1: every CPU */

struct irq_stat {
	__u64 count;
	__u64 total_ns;
	struct hist hist;
};

static const struct irq_stat zero_irq_stat;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} irq_start SEC(".maps");

static __always_inline bool irq_cpu_selected(void)
{
	return targ_cpu < 0 || bpf_get_smp_processor_id() == (__u32)targ_cpu;
}

static __always_inline void irq_start_now(void)
{
	__u32 zero = 0;
	__u64 *ts = bpf_map_lookup_elem(&irq_start, &zero);

	if (ts)
		*ts = bpf_ktime_get_ns();
}

/* Nanoseconds since irq_start_now() on this CPU, 0 when it was not seen (attached midway). */
static __always_inline __u64 irq_elapsed(void)
{
	__u32 zero = 0;
	__u64 *ts = bpf_map_lookup_elem(&irq_start, &zero), delta;

	if (!ts || !*ts)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	return delta;
}

/* The statistics for key in a per-CPU hash, created on first use. */
static __always_inline struct irq_stat *irq_stat_of(void *map, const void *key)
{
	struct irq_stat *s = bpf_map_lookup_elem(map, key);

	if (s)
		return s;
	bpf_map_update_elem(map, key, &zero_irq_stat, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* One handler run of delta_ns (this CPU's slot: plain increments are exact). */
static __always_inline void irq_account(struct irq_stat *s, __u64 delta_ns)
{
	__u64 v = targ_ns ? delta_ns : delta_ns / 1000, slot;

	s->count++;
	s->total_ns += delta_ns;
	if (!targ_dist)
		return;
	slot = log2_u64(v);
	s->hist.slots[slot < MAX_SLOTS ? slot : MAX_SLOTS - 1]++;
	s->hist.total += v;
}

#endif
