// SPDX-License-Identifier: GPL-2.0
/* watch: security rules evaluated in the kernel. User space (bpfsight.tools.watch) loads the
 * rules into `rules`, their path prefixes into `paths` and their networks into `nets4`/`nets6`
 * (LPM tries: one lookup says which rules list a path or address); each hook computes the
 * bitmask of rules its event matches and sends a record only when it is not empty, so an
 * uninteresting event costs its hook and a few map lookups and never reaches user space.
 * Every exec is sent (small), so user space keeps each process's ancestry.
 *
 * Hooks (no kprobes, no LSM here): sched_process_exec (the executed file's path, resolved from
 * its dentries); open/openat/openat2 (an absolute path as given, matched at entry; a relative
 * one resolved from the opened file's dentries at exit); connect, listen; set*id, capset,
 * ptrace, bpf, mount syscalls; module loads through the raw sys_enter tracepoint (this kernel
 * has no init_module tracepoints: loaded only when a rule asks). `action: kill` sends SIGKILL
 * from the hook: the syscall in progress completes, nothing after it runs. */
#include "common.bpf.h"
#include "events.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define MAX_RULES 32
#define MAX_NAMES 8
#define MAX_PORTS 8
#define PATH_LEN 256
#define ARGS_LEN 256
#define WALK_DEPTH 24
#define ANY_UID 0xffffffff
#define SIGKILL 9
#define AF_INET 2
#define AF_INET6 10

enum kind {
	KIND_EXEC = 1, KIND_OPEN, KIND_CONNECT, KIND_LISTEN, KIND_SETUID, KIND_CAPSET,
	KIND_PTRACE, KIND_MODULE, KIND_BPF, KIND_MOUNT,
	KIND_EXEC_NOTE = 100, /* an exec no rule matched: for the ancestry */
};

/* one rule, written by user space (bpfsight.tools.watch.Rules) */
struct rule {
	__u32 kind;
	__u32 uid;          /* ANY_UID: any */
	__u32 access;       /* open: 1 read, 2 write (any of them); 0 any */
	__u32 rate;         /* alerts per second, the rest counted as suppressed */
	__u64 cgid;         /* cgroup v2 id and level: the process is in it or below; 0 any */
	__u32 cglevel;
	__u8 listed;        /* paths (or networks) are listed: match them ... */
	__u8 unlisted;      /* ... or match what is NOT listed */
	__u8 ports_unlisted;
	__u8 kill;
	__u8 ncomms;
	__u8 nparents;
	__u8 nports;
	__u8 pad;
	__u32 pad2;  /* the names 8-byte aligned: compared as two words */
	char comms[MAX_NAMES][TASK_COMM_LEN];
	char parents[MAX_NAMES][TASK_COMM_LEN];
	__u16 ports[MAX_PORTS];
};

struct rate_window {
	__u64 second;
	__u32 sent;
	__u32 suppressed;
};

struct path_key {
	__u32 prefixlen;
	char path[PATH_LEN];
};

struct net4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct net6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* decoded by bpfsight.tools.watch through the BTF (EVENT_RECORD) */
struct watch_event {
	__u64 ts_ns;
	__u64 rules;    /* bit i: rules[i] matched */
	__u64 cgid;
	__s64 arg;      /* open flags; the uid asked for; ptrace's target; bpf's command */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 kind;
	__s32 ret;      /* open's result (an fd, or -errno) */
	__u16 family;
	__u16 port;
	__u8 addr[16];
	__u8 killed;
	__u8 pad[7];
	char comm[TASK_COMM_LEN];
	char pcomm[TASK_COMM_LEN];
	char path[PATH_LEN];
	char args[ARGS_LEN];  /* exec: argv, NUL-separated; mount: the source */
};
EVENT_RECORD(struct watch_event);

const volatile __u32 nrules = 0;
/* an open rule matches paths no entry lists (not_paths, or no paths): every open is matched;
 * otherwise an open of an unlisted path ends at its lookup */
const volatile bool open_rules_unlisted = false;
const volatile bool exec_notes = true;  /* every exec to user space, for the ancestry */
const volatile __u32 nr_init_module = 175;   /* x86-64; user space sets this arch's */
const volatile __u32 nr_finit_module = 313;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct rule);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct rate_window);
} rates SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct path_key);
	__type(value, __u64);  /* the rules that list this prefix (or a shorter one of it) */
} paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct net4_key);
	__type(value, __u64);
} nets4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct net6_key);
	__type(value, __u64);
} nets6 SEC(".maps");

/* per-CPU scratch: a path being built from dentries (written from the middle backwards), and
 * the key of a path lookup */
struct scratch {
	char walk[2 * PATH_LEN];
	struct path_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* an open in progress: the rules its absolute path matched, or that it must be resolved */
struct pending_open {
	const char *path;
	__u64 rules;  /* matched at entry, for an absolute path */
	__u32 flags;
	__u32 state;  /* enum open_state */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_open);
} opens SEC(".maps");

static __always_inline struct scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

/* --- matching --- */

struct facts {
	__u64 listed;  /* rules whose paths/networks hold the event's */
	__u32 access;
	__u16 port;
};

static __always_inline bool same_name(const char *a, const char *b)
{
	return *(__u64 *)a == *(__u64 *)b && *(__u64 *)(a + 8) == *(__u64 *)(b + 8);
}

static __always_inline bool name_in(const char (*names)[TASK_COMM_LEN], __u8 n, const char *name)
{
	for (int i = 0; i < MAX_NAMES; i++)
		if (i < n && same_name(names[i], name))
			return true;
	return false;
}

static __always_inline bool port_in(const __u16 *ports, __u8 n, __u16 port)
{
	for (int i = 0; i < MAX_PORTS; i++)
		if (i < n && ports[i] == port)
			return true;
	return false;
}

static __always_inline bool in_cgroup(struct task_struct *t, __u64 cgid, __u32 level)
{
	struct cgroup *cg = BPF_CORE_READ(t, cgroups, dfl_cgrp), *anc;

	if (!cg || BPF_CORE_READ(cg, level) < (int)level || level > 255)
		return false;
	anc = BPF_CORE_READ(cg, ancestors[level]);
	return anc && BPF_CORE_READ(anc, kn, id) == cgid;
}

/* Within its rate, or counted as suppressed. */
static __always_inline bool within_rate(__u32 i, __u32 rate)
{
	struct rate_window *w = bpf_map_lookup_elem(&rates, &i);
	__u64 second = bpf_ktime_get_ns() / 1000000000;

	if (!w)
		return false;
	if (w->second != second) {
		w->second = second;
		w->sent = 0;
	}
	if (rate && w->sent >= rate) {
		__sync_fetch_and_add(&w->suppressed, 1);
		return false;
	}
	__sync_fetch_and_add(&w->sent, 1);
	return true;
}

struct matching {
	char comm[TASK_COMM_LEN];   /* first: 8-byte aligned, compared as two words */
	char pcomm[TASK_COMM_LEN];
	const struct facts *f;
	struct task_struct *task;
	__u64 matched;
	__u32 kind;
	__u32 uid;
	bool kill;
};

/* One rule against the event (a bpf_loop callback: the verifier sees one rule, not 32). */
static long match_rule(__u32 i, struct matching *m)
{
	const struct facts *f = m->f;
	struct rule *r = bpf_map_lookup_elem(&rules, &i);

	if (!r || r->kind != m->kind)
		return 0;
	if (r->uid != ANY_UID && r->uid != m->uid)
		return 0;
	if (r->ncomms && !name_in(r->comms, r->ncomms, m->comm))
		return 0;
	if (r->nparents && !name_in(r->parents, r->nparents, m->pcomm))
		return 0;
	if (r->access && !(r->access & f->access))
		return 0;
	if (r->listed && ((f->listed >> (i & 63)) & 1) == r->unlisted)
		return 0;
	if (r->nports && port_in(r->ports, r->nports, f->port) == r->ports_unlisted)
		return 0;
	if (r->cgid && !in_cgroup(m->task, r->cgid, r->cglevel))
		return 0;
	if (!within_rate(i, r->rate))
		return 0;
	m->matched |= 1ULL << (i & 63);
	m->kill |= r->kill;
	return 0;
}

/* The rules of this kind the current process and the event's facts match; *kill set when one
 * of them says so. */
static __always_inline __u64 match(__u32 kind, const struct facts *f, bool *kill)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct matching m = {.f = f, .kind = kind, .task = task,
			     .uid = (__u32)bpf_get_current_uid_gid()};

	bpf_get_current_comm(m.comm, sizeof(m.comm));
	BPF_CORE_READ_STR_INTO(&m.pcomm, task, real_parent, comm);
	bpf_loop(nrules, match_rule, &m, 0);
	*kill = m.kill;
	return m.matched;
}

static __always_inline struct watch_event *start_event(__u32 kind, __u64 rules)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct watch_event *e = RESERVE_STAMPED(struct watch_event);

	if (!e)
		return 0;
	e->kind = kind;
	e->rules = rules;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	e->ppid = BPF_CORE_READ(t, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cgid = bpf_get_current_cgroup_id();
	e->arg = e->ret = e->family = e->port = e->killed = 0;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	BPF_CORE_READ_STR_INTO(&e->pcomm, t, real_parent, comm);
	e->path[0] = e->args[0] = 0;
	return e;
}

static __always_inline void send(struct watch_event *e, bool kill)
{
	if (kill) {
		bpf_send_signal(SIGKILL);
		e->killed = 1;
	}
	submit_event(e, sizeof(*e));
}

/* --- paths --- */

/* The rules whose path prefixes hold key->path (NUL-terminated). */
static __always_inline __u64 paths_listing(struct path_key *key)
{
	__u64 *rules_of;

	key->prefixlen = PATH_LEN * 8;
	rules_of = bpf_map_lookup_elem(&paths, key);
	return rules_of ? *rules_of : 0;
}

struct walking {
	struct scratch *s;
	struct dentry *d;
	struct mount *mnt;
	__u32 off;  /* the path so far is s->walk[off, PATH_LEN) */
	bool too_long;
};

/* One step up from a dentry: its name prepended, or across a mount point (bpf_loop callback;
 * 1 ends the walk). */
static long walk_up(__u32 i, struct walking *w)
{
	struct dentry *d = w->d, *parent = BPF_CORE_READ(d, d_parent);
	struct mount *mnt = w->mnt, *up;
	struct qstr name;
	__u32 len;

	if (d == BPF_CORE_READ(mnt, mnt.mnt_root)) {
		up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt)
			return 1;
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}
	if (d == parent)
		return 1;
	name = BPF_CORE_READ(d, d_name);
	len = name.len & (PATH_LEN - 1);
	if (len + 1 >= w->off) {
		w->too_long = true;
		return 1;
	}
	w->off -= len;
	bpf_probe_read_kernel(&w->s->walk[w->off & (PATH_LEN - 1)], len, name.name);
	w->off -= 1;
	w->s->walk[w->off & (PATH_LEN - 1)] = '/';
	w->d = parent;
	return 0;
}

/* The absolute path of a file, built from its dentries up to the root, crossing mount points,
 * into s->key.path; false when deeper than WALK_DEPTH or longer than PATH_LEN. (bpf_d_path is
 * not allowed in tracepoints.) */
static __always_inline bool file_path(struct scratch *s, struct file *file)
{
	struct vfsmount *vfs = BPF_CORE_READ(file, f_path.mnt);
	struct walking w = {.s = s, .d = BPF_CORE_READ(file, f_path.dentry), .off = PATH_LEN,
			    .mnt = (void *)vfs - bpf_core_field_offset(struct mount, mnt)};

	s->walk[PATH_LEN] = 0;
	if (bpf_loop(WALK_DEPTH, walk_up, &w, 0) >= WALK_DEPTH || w.too_long)
		return false;  /* never reached the root, or too long */
	if (w.off == PATH_LEN) {
		w.off -= 1;
		s->walk[w.off & (PATH_LEN - 1)] = '/';
	}
	bpf_probe_read_kernel(s->key.path, PATH_LEN, &s->walk[w.off & (PATH_LEN - 1)]);
	return true;
}

/* --- exec --- */

BTF_TP(sched_process_exec, watch_exec, struct task_struct *p, pid_t old_pid,
       struct linux_binprm *bprm)
{
	struct scratch *s = get_scratch();
	struct facts f = {};
	struct watch_event *e;
	unsigned long arg_start, arg_end;
	bool kill = false;
	__u64 rules_hit;

	if (!s || current_is_self() || !current_selected())
		return 0;
	if (!file_path(s, BPF_CORE_READ(bprm, file)))
		bpf_probe_read_kernel_str(s->key.path, PATH_LEN, BPF_CORE_READ(bprm, filename));
	f.listed = paths_listing(&s->key);
	rules_hit = match(KIND_EXEC, &f, &kill);
	if (!rules_hit && !exec_notes)
		return 0;
	e = start_event(rules_hit ? KIND_EXEC : KIND_EXEC_NOTE, rules_hit);
	if (!e)
		return 0;
	__builtin_memcpy(e->path, s->key.path, PATH_LEN);
	arg_start = BPF_CORE_READ(p, mm, arg_start);
	arg_end = BPF_CORE_READ(p, mm, arg_end);
	e->arg = arg_end - arg_start;
	bpf_probe_read_user(e->args, ARGS_LEN, (void *)arg_start);
	send(e, kill);
	return 0;
}

/* --- open --- */

#define O_ACCMODE 3
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_TRUNC 01000

static __always_inline __u32 access_of(__u32 flags)
{
	__u32 mode = flags & O_ACCMODE, access = 0;

	if (mode != O_WRONLY)
		access |= 1;
	if (mode == O_WRONLY || mode == O_RDWR || (flags & (O_CREAT | O_TRUNC)))
		access |= 2;
	return access;
}

enum open_state { OPEN_NONE, OPEN_ABSOLUTE, OPEN_RELATIVE };

static __always_inline void open_enter(const char *path, __u32 flags)
{
	struct scratch *s;
	struct pending_open *p;

	if (current_is_self() || !current_selected())
		return;
	s = get_scratch();
	p = bpf_task_storage_get(&opens, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s || !p)
		return;
	p->path = path;
	p->flags = flags;
	p->state = OPEN_NONE;
	if (bpf_probe_read_user_str(s->key.path, PATH_LEN, path) <= 0)
		return;
	if (s->key.path[0] != '/') {
		p->state = OPEN_RELATIVE;  /* resolved at exit, from the file opened */
		return;
	}
	p->state = OPEN_ABSOLUTE;
	p->rules = paths_listing(&s->key);
}

static __always_inline void open_exit(long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pending_open *p = bpf_task_storage_get(&opens, t, 0, 0);
	struct scratch *s = get_scratch();
	struct facts f = {};
	struct watch_event *e;
	bool kill = false;
	__u32 state;
	__u64 hit;

	if (!p || !s || p->state == OPEN_NONE)
		return;
	state = p->state;
	p->state = OPEN_NONE;
	if (state == OPEN_RELATIVE) {
		struct file **fds, *file = 0;

		if (ret < 0)
			return;  /* nothing opened to resolve: not matched */
		fds = BPF_CORE_READ(t, files, fdt, fd);
		if (bpf_core_read(&file, sizeof(file), &fds[ret & 0xffff]) || !file ||
		    !file_path(s, file))
			return;
		f.listed = paths_listing(&s->key);
	} else {
		f.listed = p->rules;
	}
	if (!f.listed && !open_rules_unlisted)
		return;  /* the common case: no rule lists the path */
	f.access = access_of(p->flags);
	hit = match(KIND_OPEN, &f, &kill);
	if (!hit)
		return;
	e = start_event(KIND_OPEN, hit);
	if (!e)
		return;
	e->arg = p->flags;
	e->ret = ret;
	if (state == OPEN_RELATIVE)
		__builtin_memcpy(e->path, s->key.path, PATH_LEN);
	else
		bpf_probe_read_user_str(e->path, PATH_LEN, p->path);
	send(e, kill);
}

SEC("tracepoint/syscalls/sys_enter_open")
int watch_open(struct trace_event_raw_sys_enter *ctx)
{
	open_enter((const char *)ctx->args[0], ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int watch_openat(struct trace_event_raw_sys_enter *ctx)
{
	open_enter((const char *)ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int watch_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	open_enter((const char *)ctx->args[1], how.flags);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int watch_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int watch_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int watch_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	open_exit(ctx->ret);
	return 0;
}

/* --- network --- */

SEC("tracepoint/syscalls/sys_enter_connect")
int watch_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct facts f = {};
	struct watch_event *e;
	__u8 sa[24] = {};
	__u16 family;
	__u64 *listed = 0;
	bool kill = false;
	__u64 hit;

	if (current_is_self() || !current_selected())
		return 0;
	bpf_probe_read_user(sa, sizeof(sa), (void *)ctx->args[1]);
	family = *(__u16 *)sa;
	f.port = (sa[2] << 8) | sa[3];
	if (family == AF_INET) {
		struct net4_key k = {.prefixlen = 32};

		__builtin_memcpy(k.addr, sa + 4, 4);
		listed = bpf_map_lookup_elem(&nets4, &k);
	} else if (family == AF_INET6) {
		struct net6_key k = {.prefixlen = 128};

		__builtin_memcpy(k.addr, sa + 8, 16);
		listed = bpf_map_lookup_elem(&nets6, &k);
	} else {
		return 0;
	}
	f.listed = listed ? *listed : 0;
	hit = match(KIND_CONNECT, &f, &kill);
	if (!hit)
		return 0;
	e = start_event(KIND_CONNECT, hit);
	if (!e)
		return 0;
	e->family = family;
	e->port = f.port;
	__builtin_memcpy(e->addr, family == AF_INET ? sa + 4 : sa + 8, 16);
	send(e, kill);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_listen")
int watch_listen(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct file **fds, *file = 0;
	struct socket *sock;
	struct sock *sk;
	struct facts f = {};
	struct watch_event *e;
	bool kill = false;
	__u64 hit;

	if (current_is_self() || !current_selected())
		return 0;
	fds = BPF_CORE_READ(t, files, fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[ctx->args[0] & 0xffff]) || !file)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	f.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	hit = match(KIND_LISTEN, &f, &kill);
	if (!hit)
		return 0;
	e = start_event(KIND_LISTEN, hit);
	if (!e)
		return 0;
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->port = f.port;
	if (e->family == AF_INET)
		bpf_core_read(e->addr, 4, &sk->__sk_common.skc_rcv_saddr);
	else
		bpf_core_read(e->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	send(e, kill);
	return 0;
}

/* --- privileges --- */

/* A simple event: a kind, an argument, an optional user string as path and one as args. */
static __always_inline void privileged(__u32 kind, __s64 arg, const char *path, const char *args)
{
	struct facts f = {};
	struct watch_event *e;
	bool kill = false;
	__u64 hit;

	if (current_is_self() || !current_selected())
		return;
	hit = match(kind, &f, &kill);
	if (!hit)
		return;
	e = start_event(kind, hit);
	if (!e)
		return;
	e->arg = arg;
	if (path)
		bpf_probe_read_user_str(e->path, PATH_LEN, path);
	if (args)
		bpf_probe_read_user_str(e->args, ARGS_LEN, args);
	send(e, kill);
}

/* set*id(2) asking for 0 (root) in any of the ids it sets; -1 leaves an id as it is */
static __always_inline void set_ids(__s64 a, __s64 b, __s64 c)
{
	if ((__s32)a == 0 || (__s32)b == 0 || (__s32)c == 0)
		privileged(KIND_SETUID, 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_setuid")
int watch_setuid(struct trace_event_raw_sys_enter *ctx)
{
	set_ids(ctx->args[0], -1, -1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_setgid")
int watch_setgid(struct trace_event_raw_sys_enter *ctx)
{
	set_ids(ctx->args[0], -1, -1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_setreuid")
int watch_setreuid(struct trace_event_raw_sys_enter *ctx)
{
	set_ids(ctx->args[0], ctx->args[1], -1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_setresuid")
int watch_setresuid(struct trace_event_raw_sys_enter *ctx)
{
	set_ids(ctx->args[0], ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_setresgid")
int watch_setresgid(struct trace_event_raw_sys_enter *ctx)
{
	set_ids(ctx->args[0], ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_capset")
int watch_capset(struct trace_event_raw_sys_enter *ctx)
{
	privileged(KIND_CAPSET, 0, 0, 0);
	return 0;
}

#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206

SEC("tracepoint/syscalls/sys_enter_ptrace")
int watch_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[0] == PTRACE_ATTACH || ctx->args[0] == PTRACE_SEIZE)
		privileged(KIND_PTRACE, ctx->args[1], 0, 0);
	return 0;
}

#define BPF_PROG_LOAD 5

SEC("tracepoint/syscalls/sys_enter_bpf")
int watch_bpf(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[0] == BPF_PROG_LOAD)
		privileged(KIND_BPF, BPF_PROG_LOAD, 0, 0);
	return 0;
}

/* mount(source, target, type, flags, data) */
SEC("tracepoint/syscalls/sys_enter_mount")
int watch_mount(struct trace_event_raw_sys_enter *ctx)
{
	privileged(KIND_MOUNT, ctx->args[3], (const char *)ctx->args[1],
		   (const char *)ctx->args[0]);
	return 0;
}

/* init_module and finit_module have no tracepoints of their own here (no CONFIG_MODULES: the
 * attempt ends in ENOSYS, and is still the event): the raw sys_enter, by number. */
BTF_TP(sys_enter, watch_sys_enter, struct pt_regs *regs, long id)
{
	if (id == nr_init_module || id == nr_finit_module)
		privileged(KIND_MODULE, id, 0, 0);
	return 0;
}
