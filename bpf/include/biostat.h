/* biostat's per-disk state, shared with bpfsight.tools.biostat (decoded as a numpy dtype). */
#ifndef BPFSIGHT_BIOSTAT_H
#define BPFSIGHT_BIOSTAT_H

#define NR_STAT_GROUPS 4  /* read, write, discard, flush: /proc/diskstats' groups */

struct disk_stat {
	struct bpf_spin_lock lock;  /* guards inflight, last_ns, busy_ns, queue_ns */
	__u32 inflight;             /* requests between block_io_start and block_io_done */
	__u64 last_ns;              /* when inflight last changed */
	__u64 busy_ns;              /* time with inflight >= 1, up to last_ns */
	__u64 queue_ns;             /* integral of inflight over time, up to last_ns */
	__u64 ios[NR_STAT_GROUPS];  /* completed requests */
	__u64 bytes[NR_STAT_GROUPS];
	__u64 wait_ns[NR_STAT_GROUPS];  /* sum of start -> done times of the completed ones */
	__u64 unseen_ends;          /* requests whose end was not traced (see biostat.bpf.c) */
};

#endif
