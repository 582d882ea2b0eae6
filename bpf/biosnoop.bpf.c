// SPDX-License-Identifier: GPL-2.0
/* biosnoop: one record per block I/O with its submitter, disk, op, sector, size and latency
 * (issue to completion; with -Q also the OS queue time before issue). The submitter is caught
 * in its own context at block_io_start (block.bpf.h); the request pointer links the stages. */
#define BLOCK_SUBMITTERS
#include "common.bpf.h"
#include "events.bpf.h"
#include "block.bpf.h"
#include "biosnoop.h"

EVENT_RECORD(struct bio_event);

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 min_lat_ns = 0;

/* What is known at issue; the rest arrives with the completion. */
struct stage {
	__u64 issued;
	__u64 sector;
	__u32 len;
	__u32 dev;
	__u32 cmd_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct stage);
} stages SEC(".maps");

static __always_inline void rq_issue(struct request *rq)
{
	struct stage st = {};
	void *key;

	if (!rq_disk_selected(rq))
		return;
	if (filtering_submitters() && !submitter_of(rq, &key))
		return;
	st.issued = bpf_ktime_get_ns();
	st.sector = BPF_CORE_READ(rq, __sector);
	st.len = BPF_CORE_READ(rq, __data_len);
	st.dev = rq_dev(rq);
	st.cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	bpf_map_update_elem(&stages, &rq, &st, BPF_ANY);
}

static __always_inline void emit(struct stage *st, struct submitter *who, __u64 now)
{
	struct bio_event *e = reserve_event(sizeof(*e));

	if (!e)
		return;
	e->ts = now;
	e->sector = st->sector;
	e->delta = now - st->issued;
	e->len = st->len;
	e->dev = st->dev;
	e->cmd_flags = st->cmd_flags;
	e->qdelta = NO_QUEUE_TIME;
	e->pid = 0;
	e->comm[0] = 0;
	if (who) {
		e->pid = who->pid;
		__builtin_memcpy(e->comm, who->comm, sizeof(e->comm));
		if (who->ts && who->ts <= st->issued)
			e->qdelta = st->issued - who->ts;
	}
	submit_event(e, sizeof(*e));
}

static __always_inline void rq_complete(struct request *rq)
{
	__u64 now = bpf_ktime_get_ns();
	struct submitter *who;
	struct stage *st;
	void *key;

	st = bpf_map_lookup_elem(&stages, &rq);
	if (!st)
		return;  /* issued before we attached, or filtered out at issue */
	who = submitter_of(rq, &key);
	if (now - st->issued >= min_lat_ns)
		emit(st, who, now);
	bpf_map_delete_elem(&stages, &rq);
	if (who)
		bpf_map_delete_elem(&submitters, &key);
}

BTF_TP(block_rq_issue, biosnoop_issue, struct request *rq)
{
	rq_issue(rq);
	return 0;
}

BTF_TP(block_rq_complete, biosnoop_complete, struct request *rq)
{
	rq_complete(rq);
	return 0;
}
