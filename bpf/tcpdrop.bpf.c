// SPDX-License-Identifier: GPL-2.0
/* tcpdrop: TCP packets the kernel drops, with the kernel's reason. skb:kfree_skb fires for every
 * dropped packet (consumed ones go to skb:consume_skb) with an enum skb_drop_reason; the
 * addresses, ports and flags are read from the packet's own IP and TCP headers, so drops that
 * have no socket (NO_SOCKET, checksum errors, ...) are shown too. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "maps.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define MAX_STACK_DEPTH 32

const volatile bool targ_stack = false;
/* Count drops per reason in the kernel instead of streaming them (bpfsight exporter). */
const volatile bool targ_count_reasons = false;

/* decoded by bpfsight.tools.tcpdrop through the BTF (EVENT_RECORD); flow is the packet's:
 * s* source, d* destination */
struct tcpdrop_event {
	struct flow flow;
	__u64 ts_ns;
	__u64 location;
	__u32 pid;
	__u32 reason;
	__s32 stack_id;
	__u8 state;     /* of the socket the packet belonged to; 0: none */
	__u8 tcpflags;
	__u16 pad;
};
EVENT_RECORD(struct tcpdrop_event);

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, 1024);
} stacks SEC(".maps");

/* targ_count_reasons: drops per enum skb_drop_reason, per CPU (no atomics on this path) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} reason_counts SEC(".maps");

static const __u64 zero_count;

/* Source and destination of an IPv4 or IPv6 TCP packet, from its headers (wire formats:
 * fixed offsets). False when it is not TCP or the headers are not where skb says. */
static __always_inline bool packet_flow(const struct sk_buff *skb, struct flow *f, __u8 *flags)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *ip = head + BPF_CORE_READ(skb, network_header);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	unsigned char *th;
	__u8 b, l4;

	if (proto == ETH_P_IP) {
		if (bpf_probe_read_kernel(&b, 1, ip) || b >> 4 != 4)
			return false;
		bpf_probe_read_kernel(&l4, 1, ip + 9);
		bpf_probe_read_kernel(f->saddr, 4, ip + 12);
		bpf_probe_read_kernel(f->daddr, 4, ip + 16);
		f->family = AF_INET;
		th = ip + (b & 0xF) * 4;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_probe_read_kernel(&b, 1, ip) || b >> 4 != 6)
			return false;
		bpf_probe_read_kernel(&l4, 1, ip + 6);
		bpf_probe_read_kernel(f->saddr, 16, ip + 8);
		bpf_probe_read_kernel(f->daddr, 16, ip + 24);
		f->family = AF_INET6;
		th = ip + 40;
	} else {
		return false;
	}
	if (l4 != IPPROTO_TCP)
		return false;
	bpf_probe_read_kernel(&f->sport, 2, th);
	bpf_probe_read_kernel(&f->dport, 2, th + 2);
	f->sport = bpf_ntohs(f->sport);
	f->dport = bpf_ntohs(f->dport);
	bpf_probe_read_kernel(flags, 1, th + 13);
	return true;
}

static __always_inline void dropped(void *ctx, const struct sk_buff *skb, void *location,
				    __u32 reason, const struct sock *rx_sk)
{
	const struct sock *sk = rx_sk ? rx_sk : BPF_CORE_READ(skb, sk);
	struct tcpdrop_event *e;
	struct flow f = {};
	__u8 flags = 0;

	/* NOT_SPECIFIED is plain kfree_skb() without a reason: mostly not drops (as in BCC) */
	if (reason <= bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED))
		return;
	if (!packet_flow(skb, &f, &flags) || !family_selected(f.family))
		return;
	if (targ_count_reasons) {
		__u64 *n = lookup_or_try_init(&reason_counts, &reason, &zero_count);

		if (n)
			*n += 1;  /* a program does not nest on its CPU: exact */
		return;
	}
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	e->flow = f;
	e->ts_ns = bpf_ktime_get_ns();
	e->location = (__u64)location;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->reason = reason;
	e->stack_id = targ_stack ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	e->state = sk ? sk_state(sk) : 0;
	e->tcpflags = flags;
	e->pad = 0;
	submit_event(e, sizeof(*e));
}

/* rx_sk was added as the fourth argument in 6.12: read it only where the kernel has it (the
 * verifier rejects a read past a tracepoint's last argument; the check is resolved at load). */
static __always_inline const struct sock *rx_sk_arg(__u64 *ctx)
{
	if (bpf_core_field_exists(struct trace_event_raw_kfree_skb, rx_sk))
		return (const struct sock *)ctx[3];
	return NULL;
}

/* No named arguments: ctx is read by index, as rx_sk exists only on some kernels (rx_sk_arg). */
BTF_TP(kfree_skb, tcpdrop_kfree_skb)
{
	dropped(ctx, (void *)ctx[0], (void *)ctx[1], ctx[2], rx_sk_arg(ctx));
	return 0;
}
