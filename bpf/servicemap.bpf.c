// SPDX-License-Identifier: GPL-2.0
/* servicemap: who talks to whom over TCP, aggregated per edge (client process -> server
 * address:port and, when it is local, the server process) in the kernel. Nothing runs per
 * packet: a connection is followed through its state changes (sock:inet_sock_set_state), the
 * accept() that hands it to a local server, and the rare retransmit and reset tracepoints;
 * its figures are added to its edge once, when it closes. User space reads the connections
 * still open at the end from `conns`.
 *
 * A connection between two local processes is seen from both of its sockets. It is counted
 * once, from the client's socket: the server's socket finds the client's (`by_tuple`, the
 * client's ends) when it is established and when it is accepted, which names the server
 * process on the client's connection. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define ECONNREFUSED 111
#define ETIMEDOUT 110

/* conn.flags */
#define CONN_ESTABLISHED 1
#define CONN_PASSIVE 2	/* seen from the server's socket only: the client is not local or
			 * not selected; client_addr names it */
#define CONN_CLOSED 4	/* the client closed before the server accepted: its figures wait on
			 * the server's socket (tx_b, rx_b) for the server's name */
#define CONN_SELECTED 8	/* -p/-c select its client or its server: every connect is followed,
			 * so that a selected server still names its local clients */

const volatile bool track_existing = false;

/* decoded by bpfsight.tools.servicemap (map key), also built there for open connections */
struct edge_key {
	__u8 server_addr[16];
	__u8 client_addr[16];	/* passive connections only */
	__u16 server_port;
	__u16 family;
	__u32 client_pid;	/* 0: not a local process that was followed */
	__u32 server_pid;	/* 0: not local, or not accepted (yet) */
	__u32 pad;
	__u64 client_cgid;
	__u64 server_cgid;
	char client_comm[TASK_COMM_LEN];
	char server_comm[TASK_COMM_LEN];
};

struct edge_stats {
	__u64 opened;		/* established (active) or accepted (passive) */
	__u64 failed;		/* SYN_SENT -> CLOSE */
	__u64 refused;		/* ... with ECONNREFUSED (a reset answered the SYN) */
	__u64 timed_out;	/* ... with ETIMEDOUT (SYNs unanswered) */
	__u64 tx_b;		/* client -> server payload (tcp_sock bytes_acked/bytes_received) */
	__u64 rx_b;		/* server -> client */
	__u64 retrans;
	__u64 resets;		/* sent and received */
	__u64 lat_sum_ns;	/* connect latency, SYN_SENT -> ESTABLISHED */
	__u64 lat_max_ns;
	struct hist lat_us;
};

struct conn {
	struct edge_key key;
	struct flow flow;	/* this socket's own ends */
	__u64 start_ns;
	__u64 lat_ns;
	__u64 tx_b;
	__u64 rx_b;
	__u64 server_sk;	/* the local server's socket, once established */
	__u32 retrans;
	__u32 resets;
	__u32 flags;
	__s32 err;
};

struct closed_bytes {
	__u64 tx_b;
	__u64 rx_b;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct edge_key);
	__type(value, struct edge_stats);
} edges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, const struct sock *);
	__type(value, struct conn);
} conns SEC(".maps");

/* the client's ends (IPv4-mapped IPv6 as IPv4) -> the client's socket, while it is open */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow);
	__type(value, const struct sock *);
} by_tuple SEC(".maps");

/* connections open before the start that closed since (track_existing): user space counts
 * their bytes from its own reading at the start */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow);
	__type(value, struct closed_bytes);
} closed_existing SEC(".maps");

static const struct edge_stats zero_stats;

/* ::ffff:a.b.c.d as a.b.c.d: a dual-stack socket talks to an IPv4 one with mapped addresses
 * (byte by byte: a struct flow on the stack is only 2-byte aligned) */
static __always_inline void unmap_v4(__u8 *addr, __u16 *family)
{
	int i;

	if (*family != AF_INET6 || addr[10] != 0xff || addr[11] != 0xff)
		return;
#pragma unroll
	for (i = 0; i < 10; i++)
		if (addr[i])
			return;
#pragma unroll
	for (i = 0; i < 4; i++)
		addr[i] = addr[12 + i];
#pragma unroll
	for (i = 4; i < 16; i++)
		addr[i] = 0;
	*family = AF_INET;
}

/* by_tuple's key for a client socket's flow, or (reversed) for its server's socket's flow */
static __always_inline void tuple_of(const struct flow *f, bool reversed, struct flow *t)
{
	__u16 fam = f->family, fam2 = f->family;

	__builtin_memcpy(t->saddr, reversed ? f->daddr : f->saddr, 16);
	__builtin_memcpy(t->daddr, reversed ? f->saddr : f->daddr, 16);
	t->sport = reversed ? f->dport : f->sport;
	t->dport = reversed ? f->sport : f->dport;
	unmap_v4(t->saddr, &fam);
	unmap_v4(t->daddr, &fam2);
	t->family = fam;
	t->pad = 0;
}

static __always_inline void name_current(__u32 *pid, __u64 *cgid, char *comm)
{
	*pid = bpf_get_current_pid_tgid() >> 32;
	*cgid = bpf_get_current_cgroup_id();
	bpf_get_current_comm(comm, TASK_COMM_LEN);
}

static __always_inline void account(struct conn *c, __u64 tx, __u64 rx)
{
	struct edge_stats *e;

	if (!(c->flags & CONN_SELECTED))
		return;
	e = lookup_or_try_init(&edges, &c->key, &zero_stats);
	if (!e)
		return;
	if (c->flags & CONN_ESTABLISHED) {
		__sync_fetch_and_add(&e->opened, 1);
		__sync_fetch_and_add(&e->tx_b, tx);
		__sync_fetch_and_add(&e->rx_b, rx);
		if (!(c->flags & CONN_PASSIVE)) {
			hist_add(&e->lat_us, c->lat_ns / 1000);
			__sync_fetch_and_add(&e->lat_sum_ns, c->lat_ns);
			if (c->lat_ns > e->lat_max_ns)
				e->lat_max_ns = c->lat_ns;
		}
	} else {
		__sync_fetch_and_add(&e->failed, 1);
		if (c->err == ECONNREFUSED)
			__sync_fetch_and_add(&e->refused, 1);
		else if (c->err == ETIMEDOUT)
			__sync_fetch_and_add(&e->timed_out, 1);
	}
	if (c->retrans)
		__sync_fetch_and_add(&e->retrans, c->retrans);
	if (c->resets)
		__sync_fetch_and_add(&e->resets, c->resets);
}

/* connect(), in the connecting process: the client is known, the server by its address */
static __always_inline void connecting(const struct sock *sk)
{
	struct conn c = {};

	if (current_is_self())
		return;
	sk_flow(sk, &c.flow);
	if (!flow_selected(&c.flow))
		return;
	__builtin_memcpy(c.key.server_addr, c.flow.daddr, 16);
	c.key.server_port = c.flow.dport;
	c.key.family = c.flow.family;
	name_current(&c.key.client_pid, &c.key.client_cgid, c.key.client_comm);
	c.flags = current_selected() ? CONN_SELECTED : 0;
	c.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&conns, &sk, &c, BPF_ANY))
		count_map_full();
}

static __always_inline void client_established(const struct sock *sk)
{
	struct conn *c = bpf_map_lookup_elem(&conns, &sk);
	struct flow t;

	if (!c)
		return;
	c->flags |= CONN_ESTABLISHED;
	c->lat_ns = bpf_ktime_get_ns() - c->start_ns;
	sk_flow(sk, &c->flow);  /* the local port is chosen after SYN_SENT */
	tuple_of(&c->flow, false, &t);
	bpf_map_update_elem(&by_tuple, &t, &sk, BPF_ANY);
}

/* The client's connection of a local server's socket, NULL when its client was not followed */
static __always_inline struct conn *client_of(const struct sock *server_sk)
{
	const struct sock **client_sk;
	struct flow f = {}, t;

	sk_flow(server_sk, &f);
	tuple_of(&f, true, &t);
	client_sk = bpf_map_lookup_elem(&by_tuple, &t);
	return client_sk ? bpf_map_lookup_elem(&conns, client_sk) : NULL;
}

/* the server's socket of a connection, established (softirq: its process is not known yet) */
static __always_inline void server_established(const struct sock *sk)
{
	struct conn *c = client_of(sk);

	if (c)
		c->server_sk = (__u64)sk;
}

static __always_inline void closed(const struct sock *sk, int oldstate)
{
	struct conn *c = bpf_map_lookup_elem(&conns, &sk);
	struct closed_bytes b;
	struct flow f = {}, t;
	__u64 tx, rx;

	tx = BPF_CORE_READ((struct tcp_sock *)sk, bytes_acked);
	rx = BPF_CORE_READ((struct tcp_sock *)sk, bytes_received);
	if (!c) {
		/* a local server's socket closing before its client: nothing to wait for there */
		c = client_of(sk);
		if (c) {
			c->server_sk = 0;
			return;
		}
		if (track_existing && oldstate != TCP_SYN_SENT && oldstate != TCP_SYN_RECV &&
		    oldstate != TCP_LISTEN) {
			sk_flow(sk, &f);
			b.tx_b = tx;
			b.rx_b = rx;
			bpf_map_update_elem(&closed_existing, &f, &b, BPF_ANY);
		}
		return;
	}
	if (c->flags & CONN_CLOSED) {  /* a server socket never accepted */
		account(c, c->tx_b, c->rx_b);
	} else if (c->flags & CONN_PASSIVE) {
		account(c, rx, tx);  /* the server's socket: what it received came from the client */
	} else {
		if (!(c->flags & CONN_ESTABLISHED))
			c->err = BPF_CORE_READ(sk, sk_err);
		tuple_of(&c->flow, false, &t);
		bpf_map_delete_elem(&by_tuple, &t);
		if (c->server_sk && !c->key.server_pid) {
			/* not accepted yet: wait for the server's name on its socket */
			c->flags |= CONN_CLOSED;
			c->tx_b = tx;
			c->rx_b = rx;
			bpf_map_update_elem(&conns, &c->server_sk, c, BPF_ANY);
		} else {
			account(c, tx, rx);
		}
	}
	bpf_map_delete_elem(&conns, &sk);
}

static __always_inline void set_state(const struct sock *sk, int oldstate, int newstate)
{
	if (!sk_is_tcp(sk))
		return;
	if (newstate == TCP_SYN_SENT)
		connecting(sk);
	else if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT)
		client_established(sk);
	else if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV)
		server_established(sk);
	else if (newstate == TCP_CLOSE)
		closed(sk, oldstate);
}

BTF_TP(inet_sock_set_state, servicemap_state, const struct sock *sk, int oldstate, int newstate)
{
	set_state(sk, oldstate, newstate);
	return 0;
}

/* accept() returns a connection in the server process: name the server on it */
static __always_inline void accepted(long fd)
{
	struct sock *sk;
	struct conn *c, p = {};

	if (fd < 0 || current_is_self())
		return;
	sk = fd_to_sock(fd);
	if (!sk || !sk_is_tcp(sk))
		return;
	c = client_of(sk);
	if (!c)
		c = bpf_map_lookup_elem(&conns, &sk);
	if (c) {
		if (c->flags & CONN_PASSIVE)
			return;
		name_current(&c->key.server_pid, &c->key.server_cgid, c->key.server_comm);
		if (current_selected())
			c->flags |= CONN_SELECTED;
		if (c->flags & CONN_CLOSED) {
			account(c, c->tx_b, c->rx_b);
			bpf_map_delete_elem(&conns, &sk);
		}
		return;
	}
	if (!current_selected())
		return;
	sk_flow(sk, &p.flow);
	if (!flow_selected(&p.flow))
		return;
	__builtin_memcpy(p.key.server_addr, p.flow.saddr, 16);
	__builtin_memcpy(p.key.client_addr, p.flow.daddr, 16);
	p.key.server_port = p.flow.sport;
	p.key.family = p.flow.family;
	name_current(&p.key.server_pid, &p.key.server_cgid, p.key.server_comm);
	p.flags = CONN_ESTABLISHED | CONN_PASSIVE | CONN_SELECTED;
	p.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&conns, &sk, &p, BPF_ANY))
		count_map_full();
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int servicemap_accept4(struct trace_event_raw_sys_exit *ctx)
{
	accepted(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int servicemap_accept(struct trace_event_raw_sys_exit *ctx)
{
	accepted(ctx->ret);
	return 0;
}

/* Retransmits and resets, on whichever end's socket: credited to the connection */
static __always_inline struct conn *conn_of(const struct sock *sk)
{
	struct conn *c;

	if (!sk)
		return NULL;
	c = bpf_map_lookup_elem(&conns, &sk);
	return c ? c : client_of(sk);
}

BTF_TP(tcp_retransmit_skb, servicemap_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	struct conn *c = conn_of(sk);

	if (c)
		__sync_fetch_and_add(&c->retrans, 1);
	return 0;
}

BTF_TP(tcp_send_reset, servicemap_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct conn *c = conn_of(sk);

	if (c)
		__sync_fetch_and_add(&c->resets, 1);
	return 0;
}

BTF_TP(tcp_receive_reset, servicemap_receive_reset, const struct sock *sk)
{
	struct conn *c = conn_of(sk);

	if (c)
		__sync_fetch_and_add(&c->resets, 1);
	return 0;
}
