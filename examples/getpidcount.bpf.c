// SPDX-License-Identifier: GPL-2.0
/* getpidcount: calls of libc's getpid() per process, from a uprobe (no syscall tracing).
 *   bpfsight run examples/getpidcount.bpf.c [interval] [count] */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct calls {
	__u64 count;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);		/* tgid */
	__type(value, struct calls);	/* printed as a table, busiest first */
} getpid_calls SEC(".maps");

SEC("uprobe/libc.so.6:getpid")
int on_getpid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct calls *c = bpf_map_lookup_elem(&getpid_calls, &tgid);

	if (!c) {
		struct calls init = {};

		bpf_get_current_comm(init.comm, sizeof(init.comm));
		bpf_map_update_elem(&getpid_calls, &tgid, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&getpid_calls, &tgid);
		if (!c)
			return 0;
	}
	__sync_fetch_and_add(&c->count, 1);
	return 0;
}
