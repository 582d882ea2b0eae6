// SPDX-License-Identifier: GPL-2.0
/* tcpaccept: passive TCP connections as the accepting process receives them. Without a kprobe
 * on inet_csk_accept, the exit of accept()/accept4() is the first point that runs in the
 * accepting process and knows the new connection: its return value is the new socket's fd.
 * (The SYN_RECV -> ESTABLISHED state change happens earlier, in softirq context, where the
 * process is unknown.) */
#include "common.bpf.h"
#include "events.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* decoded by bpfsight.tools.tcpaccept through the BTF (EVENT_RECORD) */
struct tcpaccept_event {
	struct flow flow;
	__u64 ts_ns;
	__u32 pid;
	char comm[TASK_COMM_LEN];
	__u32 pad;
};
EVENT_RECORD(struct tcpaccept_event);

static __always_inline void accepted(long fd)
{
	struct tcpaccept_event *e;
	struct flow f = {};
	struct sock *sk;

	if (fd < 0 || current_is_self() || !current_selected())
		return;
	sk = fd_to_sock(fd);
	if (!sk || !sk_is_tcp(sk))
		return;
	sk_flow(sk, &f);
	if (!flow_selected(&f))
		return;
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	e->flow = f;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->pad = 0;
	submit_event(e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tcpaccept_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	accepted(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tcpaccept_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	accepted(ctx->ret);
	return 0;
}
