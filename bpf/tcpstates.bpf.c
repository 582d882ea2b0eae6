// SPDX-License-Identifier: GPL-2.0
/* tcpstates: one record per TCP state change (sock:inet_sock_set_state), with the time the
 * socket spent in the state it leaves, measured from its previous change (BCC's tcpstates). */
#include "common.bpf.h"
#include "events.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct tcpstates_event {
	struct flow flow;
	__u64 skaddr;
	__u64 ts_ns;
	__u64 delta_ns;  /* in oldstate; 0 when its start was not seen */
	__u32 pid;
	__u16 oldstate;
	__u16 newstate;
	char comm[TASK_COMM_LEN];
};
EVENT_RECORD(struct tcpstates_event);

/* When each socket entered its current state. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, const struct sock *);
	__type(value, __u64);
} entered SEC(".maps");

static __always_inline void set_state(const struct sock *sk, int oldstate, int newstate)
{
	struct tcpstates_event *e;
	struct flow f = {};
	__u64 now, *since;

	if (!tcp_flow_selected(sk, &f))
		return;
	now = bpf_ktime_get_ns();
	since = bpf_map_lookup_elem(&entered, &sk);
	e = reserve_event(sizeof(*e));
	if (e) {
		e->flow = f;
		e->skaddr = (__u64)sk;
		e->ts_ns = now;
		e->delta_ns = since ? now - *since : 0;
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->oldstate = oldstate;
		e->newstate = newstate;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		submit_event(e, sizeof(*e));
	}
	if (newstate == TCP_CLOSE)
		bpf_map_delete_elem(&entered, &sk);
	else
		bpf_map_update_elem(&entered, &sk, &now, BPF_ANY);
}

BTF_TP(inet_sock_set_state, tcpstates_state, const struct sock *sk, int oldstate, int newstate)
{
	set_state(sk, oldstate, newstate);
	return 0;
}
