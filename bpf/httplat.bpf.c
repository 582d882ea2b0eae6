// SPDX-License-Identifier: GPL-2.0
/* httplat: the first bytes of what processes read from and write to TCP sockets, when they
 * start like an HTTP/1.x request line or status line; user space (bpfsight.tools.httplat)
 * parses them and pairs requests with responses per connection.
 *
 * Plain HTTP is seen at the syscalls (read/write, recvfrom/sendto, readv/writev,
 * recvmsg/sendmsg: the first iovec, where the first bytes are); HTTPS through uprobes on
 * OpenSSL's SSL_read/SSL_write (and _ex), before encryption and after decryption, where the
 * connection is the SSL object. A write is looked at on entry (its bytes are there), a read on
 * exit (when they have arrived). Only buffers whose first four bytes are a method or "HTTP"
 * leave the kernel, and for syscalls only when the descriptor is a socket: a server's
 * bodies, files and pipes cost one comparison. Bodies sent with sendfile/splice are never read
 * (they follow their headers, which are written). */
#include "common.bpf.h"
#include "events.bpf.h"
#include "pending.bpf.h"
#include "ssl.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define CAPTURE 384 /* bytes of each buffer: request lines and the headers that frame them */
#define S_IFMT 00170000
#define S_IFSOCK 0140000

enum direction { DIR_IN = 0, DIR_OUT = 1, DIR_CLOSED = 2 };

/* decoded by bpfsight.tools.httplat through the BTF (EVENT_RECORD) */
struct http_event {
	__u64 ts_ns;
	__u64 conn;     /* the fd, or the SSL object's address */
	__u32 pid;
	__u32 tid;
	__u32 len;      /* bytes the call read or was asked to write */
	__u16 captured; /* of them, in data */
	__u8 dir;       /* enum direction */
	__u8 tls;
	char comm[TASK_COMM_LEN];
	char data[CAPTURE];
};
EVENT_RECORD(struct http_event);

struct conn_key {
	__u64 conn;
	__u32 pid;
	__u32 tls;
};

/* Connections that have carried HTTP, so close() can say the descriptor is done with (user
 * space drops what was pending on it: an fd is reused by the next connection). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, __u8);
} http_conns SEC(".maps");

/* A read in progress: where its bytes will be, kept from entry to exit. */
struct pending_read {
	bool active;
	const char *buf;
	__u64 conn;
};

PENDING_MAP(struct pending_read);


/* "GET ", "POST", "PUT ", "HEAD", "DELE"(TE), "PATC"(H), "OPTI"(ONS), "CONN"(ECT), "TRAC"(E)
 * and "HTTP"(/1.x), as little-endian words. */
static __always_inline bool looks_http(__u32 w)
{
	switch (w) {
	case 0x20544547: case 0x54534f50: case 0x20545550: case 0x44414548: case 0x454c4544:
	case 0x43544150: case 0x4954504f: case 0x4e4e4f43: case 0x43415254: case 0x50545448:
		return true;
	}
	return false;
}

static __always_inline bool fd_is_socket(__u64 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return false;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return false;
	return (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) == S_IFSOCK;
}

static __always_inline void capture(const char *buf, __u64 len, __u64 conn, bool tls, __u8 dir)
{
	struct conn_key key = {.conn = conn, .pid = bpf_get_current_pid_tgid() >> 32, .tls = tls};
	struct http_event *e;
	__u32 first = 0;
	__u8 seen = 1;
	__u64 n;

	if (len < 4 || bpf_probe_read_user(&first, sizeof(first), buf) || !looks_http(first))
		return;
	if (!tls && !fd_is_socket(conn))
		return;
	e = RESERVE_STAMPED(struct http_event);
	if (!e)
		return;
	n = len < CAPTURE ? len : CAPTURE;
	if (bpf_probe_read_user(e->data, n, buf))
		n = 0;
	e->captured = n;
	e->conn = conn;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->len = len;
	e->dir = dir;
	e->tls = tls;
	submit_event(e, sizeof(*e));
	if (!bpf_map_lookup_elem(&http_conns, &key))  /* an update costs ~10x a lookup */
		bpf_map_update_elem(&http_conns, &key, &seen, BPF_ANY);
}

/* --- plain HTTP: syscalls --- */

static __always_inline void read_enter(__u64 fd, const char *buf)
{
	struct pending_read *p = pending_start(&pending);

	if (p) {
		p->buf = buf;
		p->conn = fd;
	}
}

static __always_inline void read_exit(long ret)
{
	struct pending_read *p = pending_take(&pending);

	if (p && ret > 0)
		capture(p->buf, ret, p->conn, false, DIR_IN);
}

static __always_inline void write_enter(__u64 fd, const char *buf, __u64 len)
{
	if (!current_is_self() && current_selected())
		capture(buf, len, fd, false, DIR_OUT);
}

/* The first iovec of an array in user memory: its base and length. */
static __always_inline const char *first_iov(const struct iovec *iov, __u64 *len)
{
	struct iovec v = {};

	bpf_probe_read_user(&v, sizeof(v), iov);
	*len = v.iov_len;
	return v.iov_base;
}

static __always_inline const struct iovec *msg_iov(const struct user_msghdr *msg)
{
	struct iovec *iov = 0;

	bpf_probe_read_user(&iov, sizeof(iov), &msg->msg_iov);
	return iov;
}

SEC("tracepoint/syscalls/sys_enter_read")
int httplat_read(struct trace_event_raw_sys_enter *ctx)
{
	read_enter(ctx->args[0], (const char *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int httplat_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	read_enter(ctx->args[0], (const char *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_readv")
int httplat_readv(struct trace_event_raw_sys_enter *ctx)
{
	__u64 len;

	read_enter(ctx->args[0], first_iov((const struct iovec *)ctx->args[1], &len));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int httplat_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	__u64 len;

	read_enter(ctx->args[0], first_iov(msg_iov((const struct user_msghdr *)ctx->args[1]), &len));
	return 0;
}

/* One exit program serves every read: the pending entry says where the bytes went. */
SEC("tracepoint/syscalls/sys_exit_read")
int httplat_read_exit(struct trace_event_raw_sys_exit *ctx)
{
	read_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int httplat_recvfrom_exit(struct trace_event_raw_sys_exit *ctx)
{
	read_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_readv")
int httplat_readv_exit(struct trace_event_raw_sys_exit *ctx)
{
	read_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int httplat_recvmsg_exit(struct trace_event_raw_sys_exit *ctx)
{
	read_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int httplat_write(struct trace_event_raw_sys_enter *ctx)
{
	write_enter(ctx->args[0], (const char *)ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int httplat_sendto(struct trace_event_raw_sys_enter *ctx)
{
	write_enter(ctx->args[0], (const char *)ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int httplat_writev(struct trace_event_raw_sys_enter *ctx)
{
	__u64 len = 0;
	const char *buf = first_iov((const struct iovec *)ctx->args[1], &len);

	write_enter(ctx->args[0], buf, len);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int httplat_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	__u64 len = 0;
	const char *buf = first_iov(msg_iov((const struct user_msghdr *)ctx->args[1]), &len);

	write_enter(ctx->args[0], buf, len);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int httplat_close(struct trace_event_raw_sys_enter *ctx)
{
	struct conn_key key = {.conn = ctx->args[0], .pid = bpf_get_current_pid_tgid() >> 32};
	struct http_event *e;

	if (!bpf_map_lookup_elem(&http_conns, &key))
		return 0;
	bpf_map_delete_elem(&http_conns, &key);
	e = RESERVE_STAMPED(struct http_event);
	if (!e)
		return 0;
	e->conn = key.conn;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->len = e->captured = e->tls = 0;
	e->dir = DIR_CLOSED;
	submit_event(e, sizeof(*e));
	return 0;
}

/* --- HTTPS: OpenSSL, before encryption and after decryption --- */

static __always_inline void ssl_read_enter(void *ssl, const char *buf, size_t *count)
{
	if (!current_is_self() && current_selected())
		ssl_call_enter(ssl, buf, count, DIR_IN);
}

/* SSL_read(ssl, buf, num) */
SEC("uprobe")
int BPF_KPROBE(httplat_ssl_read, void *ssl, const char *buf)
{
	ssl_read_enter(ssl, buf, 0);
	return 0;
}

/* SSL_read_ex(ssl, buf, num, &readbytes) */
SEC("uprobe")
int BPF_KPROBE(httplat_ssl_read_ex, void *ssl, const char *buf, size_t num, size_t *readbytes)
{
	ssl_read_enter(ssl, buf, readbytes);
	return 0;
}

/* Both return here (ssl.bpf.h has the count rule). */
SEC("uretprobe")
int BPF_KRETPROBE(httplat_ssl_read_ret, int ret)
{
	struct ssl_call *c;
	__u64 n;

	c = ssl_call_return(ret, &n);
	if (c)
		capture((const char *)c->buf, n, c->ssl, true, DIR_IN);
	return 0;
}

/* SSL_write(ssl, buf, int num) */
SEC("uprobe")
int BPF_KPROBE(httplat_ssl_write, void *ssl, const char *buf, int num)
{
	if (!current_is_self() && current_selected() && num > 0)
		capture(buf, num, (__u64)ssl, true, DIR_OUT);
	return 0;
}

/* SSL_write_ex(ssl, buf, size_t num, &written) */
SEC("uprobe")
int BPF_KPROBE(httplat_ssl_write_ex, void *ssl, const char *buf, size_t num)
{
	if (!current_is_self() && current_selected())
		capture(buf, num, (__u64)ssl, true, DIR_OUT);
	return 0;
}
