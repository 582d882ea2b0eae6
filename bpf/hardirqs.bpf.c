// SPDX-License-Identifier: GPL-2.0
/* hardirqs: time spent in (or, count-only, the number of runs of) hard interrupt handlers, by
 * handler name as /proc/interrupts shows it, from irq:irq_handler_entry/exit. Interrupts the
 * kernel handles without a registered irqaction (the local APIC timer, IPIs) never reach these
 * tracepoints. */
#include "common.bpf.h"
#include "irqstat.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define IRQ_NAME_LEN 32

struct irq_key {
	char name[IRQ_NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, struct irq_key);
	__type(value, struct irq_stat);
} stats SEC(".maps");

static __always_inline struct irq_stat *stat_for(struct irqaction *action)
{
	struct irq_key key = {};

	bpf_probe_read_kernel_str(key.name, sizeof(key.name), BPF_CORE_READ(action, name));
	return irq_stat_of(&stats, &key);
}

static __always_inline void count_only(struct irqaction *action)
{
	struct irq_stat *s;

	if (!irq_cpu_selected())
		return;
	s = stat_for(action);
	if (s)
		s->count++;
}

static __always_inline void on_entry(void)
{
	if (irq_cpu_selected())
		irq_start_now();
}

static __always_inline void on_exit(struct irqaction *action)
{
	struct irq_stat *s;
	__u64 delta;

	if (!irq_cpu_selected())
		return;
	delta = irq_elapsed();
	if (!delta)
		return;
	s = stat_for(action);
	if (s)
		irq_account(s, delta);
}

/* -C loads only the *_count programs; time modes the entry/exit pairs. */
BTF_TP(irq_handler_entry, hardirqs_count, int irq, struct irqaction *action)
{
	count_only(action);
	return 0;
}

BTF_TP(irq_handler_entry, hardirqs_entry, int irq, struct irqaction *action)
{
	on_entry();
	return 0;
}

BTF_TP(irq_handler_exit, hardirqs_exit, int irq, struct irqaction *action, int ret)
{
	on_exit(action);
	return 0;
}
