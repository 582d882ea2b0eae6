// SPDX-License-Identifier: GPL-2.0
/* biostat: iostat's figures per disk from block-layer events. A request is in flight from
 * block_io_start to block_io_done (or until block_rq_merge folds it into another), the span
 * /proc/diskstats accounts too. Every change of the in-flight count integrates, under a per-disk
 * spin lock, the time with at least one request in flight (utilisation) and the in-flight count
 * over time (average queue size); user space extends both to the moment it reads them.
 * bpf_spin_lock is allowed in tp_btf programs but not in raw_tp ones, so there are no twins. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "block.bpf.h"
#include "biostat.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct disk_stat);
} stats SEC(".maps");

static const struct disk_stat zero_stat;

/* Integrate a disk's in-flight time up to now, then move its in-flight count by delta (call
 * with s->lock held). */
static __always_inline void inflight_move_locked(struct disk_stat *s, __u64 now, int delta)
{
	__u64 span;

	/* clocks read on different CPUs just before the lock may arrive out of order */
	if (now > s->last_ns) {
		span = now - s->last_ns;
		if (s->inflight) {
			s->busy_ns += span;
			s->queue_ns += span * s->inflight;
		}
		s->last_ns = now;
	}
	s->inflight += delta;
}

static __always_inline void inflight_move(struct disk_stat *s, __u64 now, int delta)
{
	bpf_spin_lock(&s->lock);
	inflight_move_locked(s, now, delta);
	bpf_spin_unlock(&s->lock);
}

/* Stop tracking rq; returns its start time, or 0 if it was never tracked. The end is claimed
 * by zeroing the start under the disk's lock, not by deleting the entry: a hash map's delete
 * fails (-EBUSY) when this CPU interrupted a program holding a lock of the same map (a
 * completion in a softirq on top of a submission), and an end lost so left the request in
 * flight, adding phantom queue time, until its struct request was reused. */
static __always_inline __u64 rq_finish(struct request *rq, struct disk_stat **sp, __u64 now)
{
	__u32 dev = rq_dev(rq);
	struct disk_stat *s;
	__u64 *start, ts;

	start = bpf_map_lookup_elem(&starts, &rq);
	if (!start)
		return 0;
	s = bpf_map_lookup_elem(&stats, &dev);
	if (!s)
		return 0;
	bpf_spin_lock(&s->lock);
	ts = *start;
	*start = 0;
	if (ts)
		inflight_move_locked(s, now, -1);
	bpf_spin_unlock(&s->lock);
	if (!ts)
		return 0;  /* another CPU ended it first */
	bpf_map_delete_elem(&starts, &rq);  /* best effort: a zero start is an ended request */
	*sp = s;
	return ts;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(biostat_io_start, struct request *rq)
{
	__u32 dev = rq_dev(rq);
	struct disk_stat *s, *old = NULL;
	__u64 now;

	if (!dev || !rq_disk_selected(rq))
		return 0;
	s = lookup_or_try_init(&stats, &dev, &zero_stat);
	if (!s)
		return 0;
	now = bpf_ktime_get_ns();
	/* A request is reused only after it ended, so a live entry still here is one whose end
	 * we did not see: end it now rather than leave it in flight forever. */
	if (rq_finish(rq, &old, now) && old)
		__sync_fetch_and_add(&old->unseen_ends, 1);
	if (bpf_map_update_elem(&starts, &rq, &now, BPF_ANY))
		return 0;
	inflight_move(s, now, 1);
	return 0;
}

/* Bytes are counted as each part of a request completes, as /proc/diskstats does. */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(biostat_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u32 dev = rq_dev(rq), grp = rq_stat_group(rq);
	struct disk_stat *s;

	if (!bpf_map_lookup_elem(&starts, &rq))
		return 0;
	s = bpf_map_lookup_elem(&stats, &dev);
	if (s && grp < NR_STAT_GROUPS)
		__sync_fetch_and_add(&s->bytes[grp], nr_bytes);
	return 0;
}

SEC("tp_btf/block_io_done")
int BPF_PROG(biostat_io_done, struct request *rq)
{
	__u32 grp = rq_stat_group(rq);
	struct disk_stat *s = NULL;
	__u64 now = bpf_ktime_get_ns();
	__u64 start = rq_finish(rq, &s, now);

	if (!start || !s || grp >= NR_STAT_GROUPS)
		return 0;
	__sync_fetch_and_add(&s->ios[grp], 1);
	__sync_fetch_and_add(&s->wait_ns[grp], now - start);
	return 0;
}

/* A request merged into another is gone without completing: it leaves the queue uncounted. */
SEC("tp_btf/block_rq_merge")
int BPF_PROG(biostat_merge, struct request *rq)
{
	struct disk_stat *s = NULL;

	rq_finish(rq, &s, bpf_ktime_get_ns());
	return 0;
}
