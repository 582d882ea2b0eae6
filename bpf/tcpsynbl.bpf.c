// SPDX-License-Identifier: GPL-2.0
/* tcpsynbl: the listen backlog (accept queue length) each time a handshake completes, as a log2
 * histogram per backlog limit. BCC reads the listener at tcp_v4/v6_syn_recv_sock entry (a
 * kprobe). Here: the child socket is cloned from the listener inside syn_recv_sock and set to
 * SYN_RECV at once (sock:inet_sock_set_state, LISTEN -> SYN_RECV), before it is queued; a clone
 * carries the listener's sk_ack_backlog and sk_max_ack_backlog as they were at that moment.
 * Handshakes refused because the queue was full create no child, so they are not counted. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);  /* backlog_max */
	__type(value, struct hist);
} hists SEC(".maps");

static const struct hist zero_hist;

static __always_inline void set_state(const struct sock *sk, int oldstate, int newstate)
{
	struct hist *h;
	__u32 max;

	if (oldstate != TCP_LISTEN || newstate != TCP_SYN_RECV || !sk_is_tcp(sk))
		return;
	if (!family_selected(BPF_CORE_READ(sk, __sk_common.skc_family)))
		return;
	max = BPF_CORE_READ(sk, sk_max_ack_backlog);
	h = lookup_or_try_init(&hists, &max, &zero_hist);
	if (h)
		hist_add(h, BPF_CORE_READ(sk, sk_ack_backlog));
}

BTF_TP(inet_sock_set_state, tcpsynbl_state, const struct sock *sk, int oldstate, int newstate)
{
	set_state(sk, oldstate, newstate);
	return 0;
}
