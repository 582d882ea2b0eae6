// SPDX-License-Identifier: GPL-2.0
/* readsize: how many bytes each read() returned, as a log2 histogram per process.
 *   bpfsight run examples/readsize.bpf.c [-s targ_tgid=PID] [interval] [count] */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "maps.bpf.h"	/* struct hist, hist_add, lookup_or_try_init */

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_tgid = 0;	/* 0: every process */

struct proc_key {
	__u32 tgid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct proc_key);
	__type(value, struct hist);	/* a `slots` array: printed as a histogram */
} read_bytes SEC(".maps");

SEC("tracepoint/syscalls/sys_exit_read")
int on_read_exit(struct trace_event_raw_sys_exit *ctx)
{
	static const struct hist empty;
	struct proc_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct hist *h;

	if (ctx->ret < 0 || (targ_tgid && key.tgid != targ_tgid))
		return 0;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	h = lookup_or_try_init(&read_bytes, &key, &empty);
	if (h)
		hist_add(h, ctx->ret);
	return 0;
}
