// SPDX-License-Identifier: GPL-2.0
/* tcpretrans: TCP retransmits (tcp:tcp_retransmit_skb) and SYN-ACK retransmits
 * (tcp:tcp_retransmit_synack), streamed one record each or, with -c, counted per flow in the
 * kernel. Both fire in the context that retransmits (timer, softirq or the sender), so PID is
 * that of whatever was running, as in BCC. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "events.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_count = false;

/* decoded by bpfsight.tools.tcpretrans through the BTF (EVENT_RECORD) */
struct tcpretrans_event {
	struct flow flow;
	__u64 ts_ns;
	__u32 pid;
	__u32 state;
	__u32 synack;
	__u32 pad;
};
EVENT_RECORD(struct tcpretrans_event);

/* -c: retransmits per flow */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct flow);
	__type(value, __u64);
} counts SEC(".maps");

static const __u64 zero;

static __always_inline void retransmit(const struct sock_common *skc, __u32 state, bool synack)
{
	struct tcpretrans_event *e;
	struct flow f = {};
	__u64 *n;

	skc_flow(skc, &f);
	if (!flow_selected(&f))
		return;
	if (targ_count) {
		n = lookup_or_try_init(&counts, &f, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return;
	}
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	e->flow = f;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->state = state;
	e->synack = synack;
	e->pad = 0;
	submit_event(e, sizeof(*e));
}

static __always_inline void retransmit_skb(const struct sock *sk)
{
	retransmit(&sk->__sk_common, sk_state(sk), false);
}

/* The SYN-ACK's addresses are the request socket's; the listener only owns it. */
static __always_inline void retransmit_synack(const struct request_sock *req)
{
	retransmit(&req->__req_common, TCP_SYN_RECV, true);
}

BTF_TP(tcp_retransmit_skb, tcpretrans_skb, const struct sock *sk, const struct sk_buff *skb)
{
	retransmit_skb(sk);
	return 0;
}

/* Kernels >= 6.10 also trace retransmits that failed before transmitting (err != 0), which
 * RetransSegs does not count; this twin, loaded where the argument exists, skips them. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcpretrans_skb_err, const struct sock *sk, const struct sk_buff *skb, int err)
{
	if (!err)
		retransmit_skb(sk);
	return 0;
}

BTF_TP(tcp_retransmit_synack, tcpretrans_synack, const struct sock *sk,
       const struct request_sock *req)
{
	retransmit_synack(req);
	return 0;
}
