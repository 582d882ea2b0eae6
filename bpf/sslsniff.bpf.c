// SPDX-License-Identifier: GPL-2.0
/* sslsniff: the plaintext OpenSSL reads and writes (BCC's sslsniff), from uprobes on
 * SSL_read/SSL_write and their _ex forms at entry (the buffer, the start) and uretprobes at
 * return, where the count is known: what was actually read or written is captured, up to
 * max_buf bytes, and sent cut short after them. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "ssl.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define MAX_BUF 16384	/* a TLS record's plaintext at most; a power of two (mask below) */
#define INVALID_UID ((__u32)-1)

enum { DIR_READ, DIR_WRITE };

const volatile __u32 targ_uid = INVALID_UID;
const volatile __u32 max_buf = 8192;	/* --max-buffer-size */

struct ssl_event {
	__u64 ts_ns;
	__u64 delta_ns;	/* call to return */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 len;	/* bytes read or written */
	__u32 buf_filled;	/* of them, in data */
	__u32 rw;	/* DIR_READ or DIR_WRITE */
	char comm[TASK_COMM_LEN];
	__u8 data[MAX_BUF];
};
EVENT_RECORD(struct ssl_event);	/* sent cut short after buf_filled bytes of data */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ssl_event);
} scratch SEC(".maps");

static __always_inline void call_enter(void *ssl, const __u8 *buf, size_t *count, __u32 rw)
{
	if (current_is_self() || !current_selected())
		return;
	if (targ_uid != INVALID_UID && (__u32)bpf_get_current_uid_gid() != targ_uid)
		return;
	ssl_call_enter(ssl, buf, count, rw);
}

static __always_inline void call_exit(int ret)
{
	__u64 id = bpf_get_current_pid_tgid(), n, filled;
	struct ssl_call *p = ssl_call_return(ret, &n);
	struct ssl_event *e;
	__u32 zero = 0;

	if (!p)
		return;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	e->ts_ns = bpf_ktime_get_ns();
	e->delta_ns = e->ts_ns - p->start_ns;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->len = n;
	e->rw = p->rw;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	filled = n < max_buf ? n : max_buf;
	filled &= MAX_BUF - 1 | MAX_BUF;	/* for the verifier: at most MAX_BUF */
	if (filled > MAX_BUF || bpf_probe_read_user(e->data, filled, p->buf))
		filled = 0;
	e->buf_filled = filled;
	emit_event(e, __builtin_offsetof(struct ssl_event, data) + (filled & (2 * MAX_BUF - 1)));
}

/* SSL_read(ssl, buf, num), SSL_write(ssl, buf, num) */
SEC("uprobe")
int BPF_KPROBE(sslsniff_read, void *ssl, const __u8 *buf)
{
	call_enter(ssl, buf, 0, DIR_READ);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(sslsniff_write, void *ssl, const __u8 *buf)
{
	call_enter(ssl, buf, 0, DIR_WRITE);
	return 0;
}

/* SSL_read_ex(ssl, buf, num, &readbytes), SSL_write_ex(ssl, buf, num, &written) */
SEC("uprobe")
int BPF_KPROBE(sslsniff_read_ex, void *ssl, const __u8 *buf, size_t num, size_t *count)
{
	call_enter(ssl, buf, count, DIR_READ);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(sslsniff_write_ex, void *ssl, const __u8 *buf, size_t num, size_t *count)
{
	call_enter(ssl, buf, count, DIR_WRITE);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(sslsniff_return, int ret)
{
	call_exit(ret);
	return 0;
}
