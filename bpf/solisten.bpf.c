// SPDX-License-Identifier: GPL-2.0
/* solisten: sockets put into listening state by listen(2), with their address, protocol and
 * backlog (BCC's solisten). BCC hooks inet_listen with a kprobe; here the syscall's exit
 * reads the socket through its file descriptor, and the result says whether it listens. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "sock.bpf.h"
#include "pending.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct listen_event {
	struct flow flow;  /* the local end: the address and port it listens on */
	__u64 ts_ns;
	__u32 pid;
	__u32 backlog;
	__s32 ret;
	__u16 protocol;  /* IPPROTO_* */
	__u16 type;      /* SOCK_STREAM, ... */
	char comm[TASK_COMM_LEN];
};
EVENT_RECORD(struct listen_event);

struct pending_listen {
	bool active;
	int fd;
	__u32 backlog;
};

PENDING_MAP(struct pending_listen);

SEC("tracepoint/syscalls/sys_enter_listen")
int solisten_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct pending_listen *p = pending_start(&pending);

	if (p) {
		p->fd = ctx->args[0];
		p->backlog = ctx->args[1];
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int solisten_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pending_listen *p = pending_take(&pending);
	struct listen_event *e;
	struct flow f = {};
	struct sock *sk;

	if (!p)
		return 0;
	sk = fd_to_sock(p->fd);
	if (!sk)
		return 0;  /* not a socket: listen failed with ENOTSOCK, nothing to show */
	sk_flow(sk, &f);
	if ((f.family != AF_INET && f.family != AF_INET6) || !flow_selected(&f))
		return 0;  /* BCC's solisten shows inet sockets only */
	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;
	e->flow = f;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->backlog = p->backlog;
	e->ret = ctx->ret;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->type = BPF_CORE_READ(sk, sk_type);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	submit_event(e, sizeof(*e));
	return 0;
}
