// SPDX-License-Identifier: GPL-2.0
/* pktstat: packets and bytes on one interface by direction, protocol and port, counted by a
 * tc program on each direction (tcx links) or an XDP program on ingress. The programs never
 * drop or change a packet: TCX_NEXT / XDP_PASS whatever they find. */
#include "common.bpf.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_HLEN 14
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCX_NEXT (-1)
#define XDP_PASS 2

enum direction { DIR_IN, DIR_OUT };

struct pkt_key {
	__u32 ifindex;    /* one object counts on several interfaces for the exporter */
	__u16 ethertype;  /* the frame's (after one VLAN tag) */
	__u8 dir;         /* enum direction */
	__u8 proto;       /* IP protocol; 0 for what is not IP */
	__u16 port;       /* TCP/UDP: the lower of the two ports (the service's, as a rule) */
	__u16 pad;
};

struct pkt_val {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct pkt_key);
	__type(value, struct pkt_val);
} counts SEC(".maps");

/* Packets counted under no key because the map was full: shown, never lost silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt_val);
} uncounted SEC(".maps");

static __always_inline void add(struct pkt_val *v, __u64 len)
{
	v->packets += 1;  /* per-CPU values: no atomics needed */
	v->bytes += len;
}

static __always_inline void count(void *data, void *data_end, __u64 len, __u8 dir,
				  __u32 ifindex)
{
	struct pkt_key key = {.dir = dir, .ifindex = ifindex};
	struct pkt_val *v, zero = {};
	__u8 *p = data, proto = 0;
	__u32 l4 = 0, idx = 0;

	if (p + ETH_HLEN <= (__u8 *)data_end) {
		key.ethertype = bpf_ntohs(*(__u16 *)(p + 12));
		l4 = ETH_HLEN;
		if (key.ethertype == ETH_P_8021Q && p + ETH_HLEN + 4 <= (__u8 *)data_end) {
			key.ethertype = bpf_ntohs(*(__u16 *)(p + 16));
			l4 += 4;
		}
	}
	if (key.ethertype == ETH_P_IP && p + l4 + 20 <= (__u8 *)data_end && l4 <= 18) {
		__u8 ihl = (p[l4] & 0x0f) * 4;

		proto = p[l4 + 9];
		l4 += ihl >= 20 ? ihl : 20;
	} else if (key.ethertype == ETH_P_IPV6 && p + l4 + 40 <= (__u8 *)data_end && l4 <= 18) {
		proto = p[l4 + 6];  /* the first next header: extension headers are not walked */
		l4 += 40;
	}
	key.proto = proto;
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4 <= 78 &&
	    p + l4 + 4 <= (__u8 *)data_end) {
		__u16 sport = bpf_ntohs(*(__u16 *)(p + l4)), dport = bpf_ntohs(*(__u16 *)(p + l4 + 2));

		key.port = sport < dport ? sport : dport;
	}
	v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
	}
	if (!v)
		v = bpf_map_lookup_elem(&uncounted, &idx);
	if (v)
		add(v, len);
}

SEC("tc")
int pktstat_ingress(struct __sk_buff *skb)
{
	count((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, DIR_IN, skb->ifindex);
	return TCX_NEXT;
}

SEC("tc")
int pktstat_egress(struct __sk_buff *skb)
{
	count((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, DIR_OUT, skb->ifindex);
	return TCX_NEXT;
}

SEC("xdp")
int pktstat_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	count(data, data_end, data_end - data, DIR_IN, ctx->ingress_ifindex);
	return XDP_PASS;
}
