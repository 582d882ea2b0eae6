/* What the OpenSSL tools share (httplat, sslsniff): an SSL_read/SSL_write call (or their _ex
 * forms) kept from its uprobe to its uretprobe in task storage, and the rule that says how
 * many bytes it moved. Apart from the syscall tools' `pending`: the read(2) inside SSL_read
 * would overwrite it. */
#ifndef BPFSIGHT_SSL_BPF_H
#define BPFSIGHT_SSL_BPF_H

#include "common.bpf.h"

struct ssl_call {
	bool active;
	__u32 rw;          /* the tool's direction */
	const __u8 *buf;
	size_t *count;     /* the _ex forms' last argument; NULL for SSL_read/SSL_write */
	__u64 ssl;         /* the SSL object: the connection */
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

static __always_inline void ssl_call_enter(void *ssl, const void *buf, size_t *count, __u32 rw)
{
	struct ssl_call *c = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0,
						  BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!c)
		return;
	c->active = true;
	c->rw = rw;
	c->buf = buf;
	c->count = count;
	c->ssl = (__u64)ssl;
	c->start_ns = bpf_ktime_get_ns();
}

/* The call returning with ret, taken, and in *n the bytes it moved: SSL_read/SSL_write return
 * the count (> 0), the _ex forms 1 and the count through their last argument. NULL when no
 * call of ours is in flight or it moved nothing. */
static __always_inline struct ssl_call *ssl_call_return(int ret, __u64 *n)
{
	struct ssl_call *c = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0, 0);

	if (!c || !c->active)
		return 0;
	c->active = false;
	*n = ret;
	if (ret <= 0 || (c->count && (ret != 1 || bpf_probe_read_user(n, sizeof(*n), c->count))))
		return 0;
	return c;
}

#endif
