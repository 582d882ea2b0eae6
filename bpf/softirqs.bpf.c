// SPDX-License-Identifier: GPL-2.0
/* softirqs: time spent in (or, count-only, the number of) soft interrupts per vector, from
 * irq:softirq_entry/exit. */
#include "common.bpf.h"
#include "irqstat.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define NR_SOFTIRQS 10

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, NR_SOFTIRQS);
	__type(key, __u32);
	__type(value, struct irq_stat);
} stats SEC(".maps");

static __always_inline void count_only(__u32 vec)
{
	struct irq_stat *s;

	if (!irq_cpu_selected())
		return;
	s = irq_stat_of(&stats, &vec);
	if (s)
		s->count++;
}

static __always_inline void on_entry(void)
{
	if (irq_cpu_selected())
		irq_start_now();
}

static __always_inline void on_exit(__u32 vec)
{
	struct irq_stat *s;
	__u64 delta;

	if (!irq_cpu_selected())
		return;
	delta = irq_elapsed();
	if (!delta)
		return;
	s = irq_stat_of(&stats, &vec);
	if (s)
		irq_account(s, delta);
}

/* -C loads only the *_count programs; time modes the entry/exit pairs. */
BTF_TP(softirq_entry, softirqs_count, unsigned int vec)
{
	count_only(vec);
	return 0;
}

BTF_TP(softirq_entry, softirqs_entry, unsigned int vec)
{
	on_entry();
	return 0;
}

BTF_TP(softirq_exit, softirqs_exit, unsigned int vec)
{
	on_exit(vec);
	return 0;
}
