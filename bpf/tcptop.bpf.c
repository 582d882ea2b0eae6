// SPDX-License-Identifier: GPL-2.0
/* tcptop: TCP bytes sent and received per connection and process, summed in a per-CPU hash
 * (no cross-CPU atomics on the send/recv path) and read and cleared by user space every
 * interval. Bytes are counted where the kernel reports a socket call's result:
 * sock:sock_send_length / sock:sock_recv_length (in the calling process), or on kernels without
 * them, at the exit of the send/recv/read/write syscalls on TCP socket fds. */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define MSG_PEEK 2

struct traffic_key {
	struct flow flow;
	__u32 pid;
	__u32 pad;
};

/* decoded by bpfsight.tools.tcptop (VALUE); comm is filled on the CPU that created the entry */
struct traffic {
	__u64 sent;
	__u64 received;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct traffic_key);
	__type(value, struct traffic);
} traffic SEC(".maps");

static __always_inline void count(struct sock *sk, long bytes, bool sent)
{
	struct traffic_key key = {};
	struct traffic init = {}, *t;

	if (bytes <= 0 || !sk || !sk_is_tcp(sk) || !current_selected())
		return;
	sk_flow(sk, &key.flow);
	if (!flow_selected(&key.flow))
		return;
	key.pid = bpf_get_current_pid_tgid() >> 32;
	t = bpf_map_lookup_elem(&traffic, &key);
	if (!t) {
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		t = lookup_or_try_init(&traffic, &key, &init);
		if (!t)
			return;
	}
	if (sent)
		t->sent += bytes;
	else
		t->received += bytes;
}

/* --- sock tracepoints: (sk, result, flags) after every sendmsg/recvmsg on a socket --- */

BTF_TP(sock_send_length, tcptop_send, struct sock *sk, int ret, int flags)
{
	count(sk, ret, true);
	return 0;
}

BTF_TP(sock_recv_length, tcptop_recv, struct sock *sk, int ret, int flags)
{
	if (!(flags & MSG_PEEK))
		count(sk, ret, false);
	return 0;
}

/* --- fallback: syscall pairs; the fd is kept from entry to exit per thread --- */

struct fd_call {
	int fd;
	bool peek;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct fd_call);
} calls SEC(".maps");

static __always_inline void call_enter(long fd, bool peek)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fd_call c = {.fd = fd, .peek = peek};

	if (current_selected())
		bpf_map_update_elem(&calls, &tid, &c, BPF_ANY);
}

static __always_inline void call_exit(long ret, bool sent)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fd_call *c = bpf_map_lookup_elem(&calls, &tid);

	if (!c)
		return;
	if (ret > 0 && !c->peek)
		count(fd_to_sock(c->fd), ret, sent);
	bpf_map_delete_elem(&calls, &tid);
}

/* peek: whether the call only peeks (MSG_PEEK), read from the entry's arguments */
#define SYSCALL_PAIR(name, peek, sent)						\
SEC("tracepoint/syscalls/sys_enter_" #name)					\
int tcptop_enter_##name(struct trace_event_raw_sys_enter *ctx)			\
{										\
	call_enter(ctx->args[0], peek);						\
	return 0;								\
}										\
SEC("tracepoint/syscalls/sys_exit_" #name)					\
int tcptop_exit_##name(struct trace_event_raw_sys_exit *ctx)			\
{										\
	call_exit(ctx->ret, sent);						\
	return 0;								\
}

SYSCALL_PAIR(sendto, false, true)
SYSCALL_PAIR(sendmsg, false, true)
SYSCALL_PAIR(write, false, true)
SYSCALL_PAIR(writev, false, true)
SYSCALL_PAIR(recvfrom, ctx->args[3] & MSG_PEEK, false)	/* recvfrom(fd, buf, len, flags, ...) */
SYSCALL_PAIR(recvmsg, ctx->args[2] & MSG_PEEK, false)	/* recvmsg(fd, msg, flags) */
SYSCALL_PAIR(read, false, false)
SYSCALL_PAIR(readv, false, false)
