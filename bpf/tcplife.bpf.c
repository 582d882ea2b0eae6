// SPDX-License-Identifier: GPL-2.0
/* tcplife: one record per TCP session when it closes, with its duration and the bytes it
 * moved, read from tcp_sock (bytes_acked, bytes_received) at the CLOSE transition of
 * sock:inet_sock_set_state, so nothing runs per packet. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* decoded by bpfsight.tools.tcplife through the BTF (EVENT_RECORD) */
struct tcplife_event {
	struct flow flow;
	__u64 ts_ns;
	__u64 span_ns;
	__u64 rx_b;
	__u64 tx_b;
	__u32 pid;
	char comm[TASK_COMM_LEN];
	__u32 pad;
};
EVENT_RECORD(struct tcplife_event);

/* Who owns the socket. State changes often run in softirq context, so the process is taken
 * where it is known to be current: connect() (SYN_SENT) and close() (FIN_WAIT1, LAST_ACK). */
struct ident {
	__u32 pid;
	bool selected;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, const struct sock *);
	__type(value, __u64);
} birth SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, const struct sock *);
	__type(value, struct ident);
} idents SEC(".maps");

static __always_inline void remember_owner(const struct sock *sk)
{
	struct ident id = {.pid = bpf_get_current_pid_tgid() >> 32, .selected = current_selected()};

	bpf_get_current_comm(id.comm, sizeof(id.comm));
	bpf_map_update_elem(&idents, &sk, &id, BPF_ANY);
}

static __always_inline void emit_close(const struct sock *sk, const struct flow *f, __u64 born)
{
	struct ident *id = bpf_map_lookup_elem(&idents, &sk);
	struct tcplife_event *e;
	bool selected = id ? id->selected : current_selected();
	__u64 now = bpf_ktime_get_ns();

	if (!selected)
		return;
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	e->flow = *f;
	e->ts_ns = now;
	e->span_ns = now - born;
	e->rx_b = BPF_CORE_READ((struct tcp_sock *)sk, bytes_received);
	e->tx_b = BPF_CORE_READ((struct tcp_sock *)sk, bytes_acked);
	if (id) {
		e->pid = id->pid;
		__builtin_memcpy(e->comm, id->comm, sizeof(e->comm));
	} else {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	submit_event(e, sizeof(*e));
}

static __always_inline void set_state(const struct sock *sk, int newstate)
{
	struct flow f = {};
	__u64 ts, *born;

	if (!tcp_flow_selected(sk, &f))
		return;
	/* The session starts at its last early state (ESTABLISHED for both ends), as in BCC. */
	if (newstate < TCP_FIN_WAIT1) {
		ts = bpf_ktime_get_ns();
		bpf_map_update_elem(&birth, &sk, &ts, BPF_ANY);
	}
	if (newstate == TCP_SYN_SENT || newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
		remember_owner(sk);
	if (newstate != TCP_CLOSE)
		return;
	born = bpf_map_lookup_elem(&birth, &sk);
	if (born)
		emit_close(sk, &f, *born);
	bpf_map_delete_elem(&birth, &sk);
	bpf_map_delete_elem(&idents, &sk);
}

BTF_TP(inet_sock_set_state, tcplife_state, const struct sock *sk, int oldstate, int newstate)
{
	set_state(sk, newstate);
	return 0;
}
