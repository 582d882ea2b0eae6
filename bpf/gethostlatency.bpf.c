// SPDX-License-Identifier: GPL-2.0
/* gethostlatency: host name lookups through libc (getaddrinfo, gethostbyname, gethostbyname2)
 * with their latency (BCC's gethostlatency), from a uprobe at entry (the name, the start) and a
 * uretprobe at return. A lookup that resolves through a daemon (nscd, systemd-resolved) is
 * timed as the caller sees it. */
#include "common.bpf.h"
#include "events.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define HOST_LEN 80

struct lookup_event {
	__u64 ts_ns;
	__u64 lat_ns;
	__u32 pid;
	__u32 tid;
	char comm[TASK_COMM_LEN];
	char host[HOST_LEN];
};
EVENT_RECORD(struct lookup_event);

struct pending_lookup {
	__u64 ts;
	const char *host;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);  /* tid: a lookup enters and returns on one thread */
	__type(value, struct pending_lookup);
} starts SEC(".maps");

/* BPF_KPROBE/BPF_KRETPROBE read the same registers in a uprobe (this libbpf has no BPF_UPROBE). */
SEC("uprobe")
int BPF_KPROBE(gethost_entry, const char *host)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_lookup p = {.ts = bpf_ktime_get_ns(), .host = host};

	if (current_is_self() || !current_selected())
		return 0;
	bpf_map_update_elem(&starts, &tid, &p, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(gethost_return)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct pending_lookup *p = bpf_map_lookup_elem(&starts, &tid);
	struct lookup_event *e;

	if (!p)
		return 0;
	e = reserve_event(sizeof(*e));
	if (e) {
		e->ts_ns = bpf_ktime_get_ns();
		e->lat_ns = e->ts_ns - p->ts;
		e->pid = id >> 32;
		e->tid = tid;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		if (bpf_probe_read_user_str(e->host, sizeof(e->host), p->host) < 0)
			e->host[0] = 0;
		submit_event(e, sizeof(*e));
	}
	bpf_map_delete_elem(&starts, &tid);
	return 0;
}
