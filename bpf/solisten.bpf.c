// SPDX-License-Identifier: GPL-2.0
/* solisten: sockets put into listening state by listen(2), with their address, protocol and
 * backlog (BCC's solisten). BCC hooks inet_listen with a kprobe; here the syscall's exit
 * reads the socket through its file descriptor, and the result says whether it listens. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "sock.bpf.h"

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
	int fd;
	__u32 backlog;
	bool active;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_listen);
} pending SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_listen")
int solisten_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct pending_listen *p;

	if (current_is_self() || !current_selected())
		return 0;
	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!p)
		return 0;
	p->fd = ctx->args[0];
	p->backlog = ctx->args[1];
	p->active = true;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int solisten_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct listen_event *e;
	struct pending_listen *p;
	struct flow f = {};
	struct sock *sk;

	p = bpf_task_storage_get(&pending, bpf_get_current_task_btf(), 0, 0);
	if (!p || !p->active)
		return 0;
	p->active = false;
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
