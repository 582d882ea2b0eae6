// SPDX-License-Identifier: GPL-2.0
/* biotop: block I/O per process, direction and disk, summed in the kernel: count, bytes and
 * total issue-to-completion time. User space reads and clears it every interval. */
#define BLOCK_SUBMITTERS
#include "common.bpf.h"
#include "maps.bpf.h"
#include "block.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct start {
	__u64 ts;
	__u64 len;
};

struct io_key {
	__u32 pid;
	__u32 rwflag;
	__u32 major;
	__u32 minor;
	char comm[TASK_COMM_LEN];
};

struct io_val {
	__u64 bytes;
	__u64 ns;
	__u64 io;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct io_key);
	__type(value, struct io_val);
} counts SEC(".maps");

static const struct io_val zero_val;

static __always_inline void rq_issue(struct request *rq)
{
	struct start st;
	void *key;

	if (!rq_disk_selected(rq))
		return;
	if (filtering_submitters() && !submitter_of(rq, &key))
		return;
	st.ts = bpf_ktime_get_ns();
	st.len = BPF_CORE_READ(rq, __data_len);
	bpf_map_update_elem(&starts, &rq, &st, BPF_ANY);
}

static __always_inline void rq_complete(struct request *rq)
{
	struct io_key key = {};
	struct submitter *who;
	struct io_val *val;
	struct start *st;
	void *who_key;
	__u32 dev;

	st = bpf_map_lookup_elem(&starts, &rq);
	if (!st)
		return;
	who = submitter_of(rq, &who_key);
	if (who) {
		/* I/O whose submitter we missed is summed as PID 0, like BCC's biotop */
		key.pid = who->pid;
		__builtin_memcpy(key.comm, who->comm, sizeof(key.comm));
	}
	dev = rq_dev(rq);
	key.major = dev >> 20;
	key.minor = dev & 0xfffff;
	key.rwflag = rq_is_write(rq);
	val = lookup_or_try_init(&counts, &key, &zero_val);
	if (val) {
		__sync_fetch_and_add(&val->bytes, st->len);
		__sync_fetch_and_add(&val->ns, bpf_ktime_get_ns() - st->ts);
		__sync_fetch_and_add(&val->io, 1);
	}
	bpf_map_delete_elem(&starts, &rq);
	if (who)
		bpf_map_delete_elem(&submitters, &who_key);
}

BTF_TP(block_rq_issue, biotop_issue, struct request *rq)
{
	rq_issue(rq);
	return 0;
}

BTF_TP(block_rq_complete, biotop_complete, struct request *rq)
{
	rq_complete(rq);
	return 0;
}
