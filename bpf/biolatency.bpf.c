// SPDX-License-Identifier: GPL-2.0
/* biolatency: block I/O latency, issue (or insert with -Q) to completion, as log2 histograms
 * keyed by disk and/or request flags. */
#include "common.bpf.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_per_disk = false;
const volatile bool targ_per_flag = false;
const volatile bool targ_queued = false;
const volatile bool targ_ms = false;
const volatile __u32 targ_dev = 0;  /* MKDEV(major, minor); 0 = every disk */

struct hist_key {
	__u32 dev;
	__u32 cmd_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

static const struct hist zero_hist;

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);

	if (!disk)
		return 0;
	return (BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor);
}

static __always_inline void rq_start(struct request *rq, bool issue)
{
	__u64 ts;

	/* With -Q the insert already started the clock; issue must not restart it. */
	if (issue && targ_queued && bpf_map_lookup_elem(&start, &rq))
		return;
	if (targ_dev && rq_dev(rq) != targ_dev)
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &rq, &ts, BPF_ANY);
}

static __always_inline void rq_done(struct request *rq)
{
	struct hist_key key = {};
	struct hist *h;
	__u64 *tsp, delta;

	tsp = bpf_map_lookup_elem(&start, &rq);
	if (!tsp)
		return;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &rq);
	if (targ_per_disk)
		key.dev = rq_dev(rq);
	if (targ_per_flag)
		key.cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	h = lookup_or_try_init(&hists, &key, &zero_hist);
	if (h)
		hist_add(h, targ_ms ? delta / 1000000 : delta / 1000);
}

BTF_TP(block_rq_insert, biolat_insert, struct request *rq)
{
	rq_start(rq, false);
	return 0;
}

BTF_TP(block_rq_issue, biolat_issue, struct request *rq)
{
	rq_start(rq, true);
	return 0;
}

BTF_TP(block_rq_complete, biolat_complete, struct request *rq)
{
	rq_done(rq);
	return 0;
}
