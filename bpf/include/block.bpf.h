/* Block-layer helpers shared by biosnoop, biotop and biostat: the disk of a request, the -d
 * disk filter, the iostat stat group of a request, and who submitted it. */
#ifndef BPFSIGHT_BLOCK_BPF_H
#define BPFSIGHT_BLOCK_BPF_H

#include "common.bpf.h"

const volatile __u32 targ_dev = 0;  /* MKDEV(major, minor) of a whole disk; 0 = every disk */

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)

/* The stat groups of /proc/diskstats (enum stat_group), so figures compare field by field. */
enum { GRP_READ, GRP_WRITE, GRP_DISCARD, GRP_FLUSH, NR_GRP };

static __always_inline __u32 disk_dev(struct gendisk *disk)
{
	if (!disk)
		return 0;
	return (BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor);
}

/* The whole disk a request is for (partitions are summed into it, as in /proc/diskstats). */
static __always_inline __u32 rq_dev(struct request *rq)
{
	return disk_dev(BPF_CORE_READ(rq, q, disk));
}

static __always_inline bool rq_disk_selected(struct request *rq)
{
	return !targ_dev || rq_dev(rq) == targ_dev;
}

static __always_inline bool rq_is_write(struct request *rq)
{
	return BPF_CORE_READ(rq, cmd_flags) & 1;  /* op_is_write(): odd ops move data to the disk */
}

/* op_stat_group() plus flushes, which /proc/diskstats counts apart. */
static __always_inline __u32 rq_stat_group(struct request *rq)
{
	__u32 op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;

	if (op == REQ_OP_DISCARD)
		return GRP_DISCARD;
	if (op == REQ_OP_FLUSH)
		return GRP_FLUSH;
	return op & 1;
}

#ifdef BLOCK_SUBMITTERS
/* Who submitted a request, captured where the kernel runs in the submitter's context: the
 * block_io_start tracepoint (Linux >= 6.5), keyed by the request, or on older kernels
 * block_getrq, keyed by the request's first bio. User space switches off the pair it does not
 * use (bpfsight.blockio.choose_submitter_hooks). With -p/-c only selected submitters
 * are recorded, so a request without an entry is someone else's. */
struct submitter {
	__u64 ts;    /* when it entered the block layer: the start of OS queue time */
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

/* LRU: entries of requests we never see complete (started before attach, or merged away)
 * age out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, void *);
	__type(value, struct submitter);
} submitters SEC(".maps");

static __always_inline bool filtering_submitters(void)
{
	return targ_tgid || targ_cgid;
}

static __always_inline void submitter_save(void *key)
{
	struct submitter s = {};

	if (!current_selected())
		return;
	s.ts = bpf_ktime_get_ns();
	s.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	bpf_map_update_elem(&submitters, &key, &s, BPF_ANY);
}

/* The submitter of rq, or NULL; *key is what to delete once the request is done. */
static __always_inline struct submitter *submitter_of(struct request *rq, void **key)
{
	struct submitter *s;

	*key = rq;
	s = bpf_map_lookup_elem(&submitters, key);
	if (s)
		return s;
	*key = BPF_CORE_READ(rq, bio);
	return bpf_map_lookup_elem(&submitters, key);
}

static __always_inline void submitter_io_start(struct request *rq)
{
	if (rq_disk_selected(rq))
		submitter_save(rq);
}

static __always_inline void submitter_getrq(struct bio *bio)
{
	if (!targ_dev || disk_dev(BPF_CORE_READ(bio, bi_bdev, bd_disk)) == targ_dev)
		submitter_save(bio);
}

BTF_TP(block_io_start, submit_io_start, struct request *rq)
{
	submitter_io_start(rq);
	return 0;
}

BTF_TP(block_getrq, submit_getrq, struct bio *bio)
{
	submitter_getrq(bio);
	return 0;
}
#endif /* BLOCK_SUBMITTERS */

#endif
