/* What the TCP tools share on the kernel side: a socket's addresses and ports as one `struct
 * flow` (decoded by bpfsight.net), the -4/-6 family filter and local/remote port lists.
 * Every read goes through BPF_CORE_READ so tp_btf, raw_tp and classic tracepoint programs can
 * all call these helpers with the same pointer. */
#ifndef BPFSIGHT_SOCK_BPF_H
#define BPFSIGHT_SOCK_BPF_H

#include "common.bpf.h"
#include <bpf/bpf_endian.h>
#include "flow.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* include/net/tcp_states.h */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10

#define MAX_PORTS 8

const volatile __u16 targ_family = 0;            /* AF_INET or AF_INET6; 0 = both */
const volatile __u16 targ_lports[MAX_PORTS] = {}; /* local ports; all zero = any */
const volatile __u16 targ_rports[MAX_PORTS] = {}; /* remote ports; all zero = any */

static __always_inline bool family_selected(__u16 family)
{
	if (family != AF_INET && family != AF_INET6)
		return false;
	return !targ_family || family == targ_family;
}

/* A port list set by user space: empty (first entry 0) admits every port. */
static __always_inline bool port_listed(const volatile __u16 *ports, __u16 port)
{
	int i;

	if (!ports[0])
		return true;
	for (i = 0; i < MAX_PORTS && ports[i]; i++)
		if (ports[i] == port)
			return true;
	return false;
}

static __always_inline bool sk_is_tcp(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* Local and remote ends of a socket (or of a request socket: both start with sock_common).
 * The local address is the bound one (skc_rcv_saddr), as BCC's tools print it. */
static __always_inline void skc_flow(const struct sock_common *skc, struct flow *f)
{
	f->family = BPF_CORE_READ(skc, skc_family);
	f->sport = BPF_CORE_READ(skc, skc_num);
	f->dport = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	if (f->family == AF_INET) {
		bpf_core_read(f->saddr, 4, &skc->skc_rcv_saddr);
		bpf_core_read(f->daddr, 4, &skc->skc_daddr);
	} else {
		bpf_core_read(f->saddr, 16, &skc->skc_v6_rcv_saddr);
		bpf_core_read(f->daddr, 16, &skc->skc_v6_daddr);
	}
}

/* The local port comes from inet_sport, as in the tracepoint's own fields: skc_num is already
 * zero when a socket reaches CLOSE (its port was released just before). */
static __always_inline void sk_flow(const struct sock *sk, struct flow *f)
{
	skc_flow(&sk->__sk_common, f);
	f->sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

/* -4/-6 and the local/remote port lists, applied to a flow read with skc_flow. */
static __always_inline bool flow_selected(const struct flow *f)
{
	return family_selected(f->family) && port_listed(targ_lports, f->sport) &&
	       port_listed(targ_rports, f->dport);
}

/* The flow of a TCP socket into f; false for another protocol or a flow the filters leave
 * out (the state-change tools' first step). */
static __always_inline bool tcp_flow_selected(const struct sock *sk, struct flow *f)
{
	if (!sk_is_tcp(sk))
		return false;
	sk_flow(sk, f);
	return flow_selected(f);
}

static __always_inline __u8 sk_state(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_state);
}

/* The socket behind file descriptor fd of the current task, or NULL when fd is not a socket.
 * Used where only a syscall tracepoint carries the context (accept, send/recv fallbacks). */
#define S_IFMT 00170000
#define S_IFSOCK 0140000

static __always_inline struct sock *fd_to_sock(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;
	struct socket *sock;

	if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

#endif
