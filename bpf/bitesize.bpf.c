// SPDX-License-Identifier: GPL-2.0
/* bitesize: block I/O request sizes as log2 histograms of Kbytes per process name (BCC's
 * bitesize), at block_rq_issue. The process is the one that submitted the request (block.bpf.h's
 * submitters), not whoever happens to issue it to the driver (often a kworker); a request whose
 * submission was not seen counts under the issuing task. */
#define BLOCK_SUBMITTERS
#include "block.bpf.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* -c COMM: only requests of processes with this name (compared as two words) */
const volatile char targ_comm[TASK_COMM_LEN] = {};

struct size_key {
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct size_key);
	__type(value, struct hist);
} hists SEC(".maps");

static const struct hist zero_hist;

BTF_TP(block_rq_issue, bitesize_issue, struct request *rq)
{
	struct size_key key = {};
	struct submitter *who;
	void *who_key;
	struct hist *h;
	__u32 bytes;

	if (!rq_disk_selected(rq))
		return 0;
	who = submitter_of(rq, &who_key);
	if (filtering_submitters() && !who)
		return 0;
	bytes = BPF_CORE_READ(rq, __data_len);
	if (who) {
		__builtin_memcpy(key.comm, who->comm, sizeof(key.comm));
		bpf_map_delete_elem(&submitters, &who_key);
	} else {
		bpf_get_current_comm(key.comm, sizeof(key.comm));
	}
	if (!bytes)  /* a flush carries no data */
		return 0;
	if (targ_comm[0] && (((__u64 *)key.comm)[0] != ((const volatile __u64 *)targ_comm)[0] ||
			     ((__u64 *)key.comm)[1] != ((const volatile __u64 *)targ_comm)[1]))
		return 0;
	h = lookup_or_try_init(&hists, &key, &zero_hist);
	if (h)
		hist_add(h, bytes / 1024);
	return 0;
}
