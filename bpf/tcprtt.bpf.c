// SPDX-License-Identifier: GPL-2.0
/* tcprtt: the smoothed round-trip time of TCP connections, as log2 histograms (BCC's tcprtt),
 * read from tcp_sock's srtt at every segment an established socket receives (tcp:tcp_probe,
 * which fires in tcp_rcv_established, where BCC puts its kprobe). */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "sock.bpf.h"
#include "hist.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_ms = false;
const volatile bool targ_by_raddr = false;   /* -b: a histogram per remote address */
const volatile bool targ_by_laddr = false;   /* -B: per local address */
const volatile __u16 targ_laddr_family = 0;  /* -a LADDR (0: any) */
const volatile __u8 targ_laddr[16] = {};
const volatile __u16 targ_raddr_family = 0;  /* -A RADDR (0: any) */
const volatile __u8 targ_raddr[16] = {};

struct rtt_key {
	__u8 addr[16];
	__u16 family;  /* 0: all connections in one histogram */
	__u16 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rtt_key);
	__type(value, struct hist);
} rtts SEC(".maps");

static const struct hist zero_hist;

static __always_inline bool addr_is(const __u8 *a, __u16 family, __u16 want_family,
				    const volatile __u8 *want)
{
	int i, n = family == AF_INET ? 4 : 16;

	if (!want_family)
		return true;
	if (family != want_family)
		return false;
	for (i = 0; i < 16 && i < n; i++)
		if (a[i] != want[i])
			return false;
	return true;
}

BTF_TP(tcp_probe, tcprtt_probe, struct sock *sk, struct sk_buff *skb)
{
	struct rtt_key key = {};
	struct flow f = {};
	struct hist *h;
	__u64 srtt;

	sk_flow(sk, &f);
	if (!flow_selected(&f) || !addr_is(f.saddr, f.family, targ_laddr_family, targ_laddr) ||
	    !addr_is(f.daddr, f.family, targ_raddr_family, targ_raddr))
		return 0;
	srtt = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;  /* stored as 8 x usecs */
	if (targ_ms)
		srtt /= 1000;
	if (targ_by_raddr || targ_by_laddr) {
		__builtin_memcpy(key.addr, targ_by_raddr ? f.daddr : f.saddr, sizeof(key.addr));
		key.family = f.family;
	}
	h = lookup_or_try_init(&rtts, &key, &zero_hist);
	if (h)
		hist_add(h, srtt);
	return 0;
}
