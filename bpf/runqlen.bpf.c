// SPDX-License-Identifier: GPL-2.0
/* runqlen: sampled run-queue length. A cpu-clock perf event fires on every CPU at a fixed rate
 * and reads that CPU's rq->nr_running (every scheduling class, not only CFS as libbpf-tools
 * reads), less the task on the CPU: the number of tasks waiting. One linear histogram per CPU,
 * in a per-CPU array, so samples take no lock and no atomic.
 *
 * The rq is reached from the interrupted task (current->se.cfs_rq->rq: every task, the idle
 * task included, has se.cfs_rq set to a cfs_rq of the CPU it is on), not from the per-CPU
 * `runqueues` ksym: typed data ksyms need CONFIG_KALLSYMS_ALL, which kernels often lack. Without
 * CONFIG_FAIR_GROUP_SCHED (no cfs_rq->rq) it falls back to the CFS queue, as libbpf-tools does. */
#include "common.bpf.h"
#include "hist.h"

char LICENSE[] SEC("license") = "GPL";

/* cfs_rq's task count before 6.14 renamed it nr_queued */
struct cfs_rq___pre614 {
	unsigned int nr_running;
} __attribute__((preserve_access_index));

static __always_inline __u64 this_cpu_nr_running(struct task_struct *t)
{
	struct cfs_rq *cfs = BPF_CORE_READ(t, se.cfs_rq);

	if (bpf_core_field_exists(cfs->rq))
		return BPF_CORE_READ(cfs, rq, nr_running);
	if (bpf_core_field_exists(cfs->nr_queued))
		return BPF_CORE_READ(cfs, nr_queued);
	return BPF_CORE_READ((struct cfs_rq___pre614 *)cfs, nr_running);
}

/* slots[n] counts samples that saw n tasks waiting (the last slot: MAX_SLOTS - 1 or more);
 * total is the sum of the lengths, for the mean. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

/* Samples taken while the CPU ran its idle task. User space compares them with the CPU's idle
 * time (/proc/stat) to count the idle samples that never fired: some virtual machines do not
 * run an idle vCPU's cpu-clock timer. Busy time is always sampled, so it needs no estimate. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} idle_samples SEC(".maps");

SEC("perf_event")
int runqlen_sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 len = this_cpu_nr_running(t);
	__u32 zero = 0;
	struct hist *h;
	__u64 *idle;

	if (len > 0)
		len--;  /* the task running on this CPU is not queued */
	h = bpf_map_lookup_elem(&hists, &zero);
	if (!h)
		return 0;
	h->slots[len < MAX_SLOTS ? len : MAX_SLOTS - 1]++;
	h->total += len;
	if (BPF_CORE_READ(t, pid) == 0) {  /* every CPU's idle task is pid 0 */
		idle = bpf_map_lookup_elem(&idle_samples, &zero);
		if (idle)
			(*idle)++;
	}
	return 0;
}
