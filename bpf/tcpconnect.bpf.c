// SPDX-License-Identifier: GPL-2.0
/* tcpconnect: active TCP connects. connect() moves the socket CLOSE -> SYN_SENT in the caller's
 * context, which gives pid, uid and comm; the local port is chosen only after that transition,
 * so the record is sent at the socket's next state: ESTABLISHED (with the connect latency) or
 * CLOSE (refused, timed out, reset). With -c connects are counted per flow in the kernel. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "events.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define INVALID_UID ((__u32)-1)

const volatile __u32 targ_uid = INVALID_UID;
const volatile bool targ_count = false;

struct conn_start {
	__u64 ts_ns;
	__u32 pid;
	__u32 uid;
	char comm[TASK_COMM_LEN];
};

/* decoded by bpfsight.tools.tcpconnect through the BTF (EVENT_RECORD) */
struct tcpconnect_event {
	struct flow flow;
	__u64 ts_ns;
	__u64 lat_ns;
	__u32 pid;
	__u32 uid;
	char comm[TASK_COMM_LEN];
	__u32 established;
	__u32 pad;
};
EVENT_RECORD(struct tcpconnect_event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, const struct sock *);
	__type(value, struct conn_start);
} starts SEC(".maps");

/* -c: connects per (local address, remote address, remote port); sport is left 0 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow);
	__type(value, __u64);
} counts SEC(".maps");

static const __u64 zero;

static __always_inline void connect_start(const struct sock *sk)
{
	struct conn_start s = {};
	struct flow f = {};
	__u64 *n;

	s.uid = (__u32)bpf_get_current_uid_gid();
	if (!current_selected() || (targ_uid != INVALID_UID && s.uid != targ_uid))
		return;
	sk_flow(sk, &f);
	if (!flow_selected(&f))
		return;
	if (targ_count) {
		f.sport = 0;
		n = lookup_or_try_init(&counts, &f, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return;
	}
	s.ts_ns = bpf_ktime_get_ns();
	s.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	bpf_map_update_elem(&starts, &sk, &s, BPF_ANY);
}

static __always_inline void connect_done(const struct sock *sk, int newstate)
{
	struct conn_start *s = bpf_map_lookup_elem(&starts, &sk);
	struct tcpconnect_event *e;

	if (!s)
		return;
	e = reserve_event(sizeof(*e));
	if (e) {
		sk_flow(sk, &e->flow);
		e->ts_ns = bpf_ktime_get_ns();
		e->lat_ns = e->ts_ns - s->ts_ns;
		e->pid = s->pid;
		e->uid = s->uid;
		__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
		e->established = newstate == TCP_ESTABLISHED;
		e->pad = 0;
		submit_event(e, sizeof(*e));
	}
	bpf_map_delete_elem(&starts, &sk);
}

static __always_inline void set_state(const struct sock *sk, int oldstate, int newstate)
{
	if (!sk_is_tcp(sk))
		return;
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT)
		connect_start(sk);
	else if (oldstate == TCP_SYN_SENT && !targ_count)
		connect_done(sk, newstate);
}

BTF_TP(inet_sock_set_state, tcpconnect_state, const struct sock *sk, int oldstate, int newstate)
{
	set_state(sk, oldstate, newstate);
	return 0;
}
