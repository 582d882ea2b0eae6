/* One TCP connection's ends, shared by the TCP tools' records and map keys and decoded by
 * bpfsight.net.flow_dict (its layout from the BTF). Addresses in network byte order (IPv4 in
 * the first 4 bytes), ports in host byte order; s* is the local end, d* the remote end. */
#ifndef BPFSIGHT_FLOW_H
#define BPFSIGHT_FLOW_H

struct flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 pad;
};

#endif
