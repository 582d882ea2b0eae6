// SPDX-License-Identifier: GPL-2.0
/* The multi-tools (funccount, stackcount, trace, argdist): one generic program per probe kind
 * (classic tracepoint, uprobe, uretprobe) attached to every probe of a command line, each
 * attachment with its probe's index as cookie. User space (bpfsight.probespec) writes each
 * probe's configuration into `probe_cfg`: what to do (count, count by stack, send an event,
 * a log2 histogram or a count per value of one figure) and an optional filter of the form
 * SOURCE OP CONSTANT, evaluated here. A source is a function argument, the return value, or
 * a tracepoint field (offset and size from the event's format file). */
#include "common.bpf.h"
#include "events.bpf.h"
#include "stacks.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_PROBES 64
#define STR_LEN 128
#define TP_BYTES 128
#define HIST_SLOTS_PROBE 64

enum mode { MODE_COUNT, MODE_STACK, MODE_EVENT, MODE_HIST, MODE_FREQ };
enum source_kind { SRC_NONE, SRC_ARG, SRC_RETVAL, SRC_FIELD, SRC_FIELD_DATALOC };
enum cmp { CMP_NONE, CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

struct source {
	__u8 kind;     /* enum source_kind */
	__u8 index;    /* SRC_ARG: 1..6 */
	__u8 size;     /* SRC_FIELD: 1, 2, 4 or 8 bytes */
	__u8 is_signed;
	__u16 offset;  /* SRC_FIELD: in the tracepoint's record */
	__u16 pad;
};

/* written by bpfsight.probespec, one per probe */
struct probe_cfg {
	__u8 mode;
	__u8 op;
	__u8 user_stack;
	__u8 kernel_stack;
	__u8 by_pid;      /* stackcount -P, funccount per process */
	__u8 pad[3];
	struct source filter;
	struct source value;
	struct source strs[2];  /* user strings to copy into an event (char * args or fields) */
	__s64 constant;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PROBES);
	__type(key, __u32);
	__type(value, struct probe_cfg);
} probe_cfg SEC(".maps");

struct count_key {
	__u32 probe;
	__u32 pid;      /* with by_pid */
	__s32 user_stack;
	__s32 kernel_stack;
	__u64 value;    /* MODE_HIST: the log2 slot; MODE_FREQ: the value */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct count_key);
	__type(value, __u64);
} counts SEC(".maps");

/* decoded by bpfsight.probespec through the BTF (EVENT_RECORD) */
struct probe_event {
	__u64 ts_ns;
	__u64 args[6];
	__u64 retval;
	__u32 pid;
	__u32 tid;
	__u32 probe;
	__u32 uid;
	__s32 user_stack;
	__s32 kernel_stack;
	char comm[TASK_COMM_LEN];
	char strs[2][STR_LEN];
	__u8 tp[TP_BYTES];  /* the start of a tracepoint's record */
};
EVENT_RECORD(struct probe_event);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_event);
} event_scratch SEC(".maps");

static __always_inline __u64 arg_of(struct pt_regs *regs, __u8 i)
{
	switch (i) {
	case 1: return PT_REGS_PARM1_CORE(regs);
	case 2: return PT_REGS_PARM2_CORE(regs);
	case 3: return PT_REGS_PARM3_CORE(regs);
	case 4: return PT_REGS_PARM4_CORE(regs);
	case 5: return PT_REGS_PARM5_CORE(regs);
#if defined(__TARGET_ARCH_x86)
	case 6: return BPF_CORE_READ(regs, r9);  /* this libbpf has no PT_REGS_PARM6 */
#endif
	}
	return 0;
}

/* A source's value: from the registers of a uprobe (regs, read through probe reads: the
 * verifier refuses a ctx pointer moved by a variable offset) or a tracepoint's record (tp). */
static __always_inline __s64 value_of(const struct source *s, struct pt_regs *regs, void *tp)
{
	__u64 v = 0;

	switch (s->kind) {
	case SRC_ARG:
		return regs ? arg_of(regs, s->index) : 0;
	case SRC_RETVAL:
		return regs ? PT_REGS_RC_CORE(regs) : 0;
	case SRC_FIELD:
		if (!tp)
			return 0;
		bpf_probe_read_kernel(&v, s->size & 7 ? s->size & 7 : 8, tp + (s->offset & 0xfff));
		if (s->is_signed) {
			if (s->size == 1)
				return (__s8)v;
			if (s->size == 2)
				return (__s16)v;
			if (s->size == 4)
				return (__s32)v;
		}
		return v;
	}
	return 0;
}

static __always_inline bool passes(const struct probe_cfg *c, struct pt_regs *regs, void *tp)
{
	__s64 v, k = c->constant;

	if (c->op == CMP_NONE)
		return true;
	v = value_of(&c->filter, regs, tp);
	if (!c->filter.is_signed) {
		switch (c->op) {
		case CMP_LT: return (__u64)v < (__u64)k;
		case CMP_LE: return (__u64)v <= (__u64)k;
		case CMP_GT: return (__u64)v > (__u64)k;
		case CMP_GE: return (__u64)v >= (__u64)k;
		}
	}
	switch (c->op) {
	case CMP_EQ: return v == k;
	case CMP_NE: return v != k;
	case CMP_LT: return v < k;
	case CMP_LE: return v <= k;
	case CMP_GT: return v > k;
	case CMP_GE: return v >= k;
	}
	return false;
}

static __always_inline void count(struct count_key *key)
{
	__u64 zero = 0, *n = lookup_or_try_init(&counts, key, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* A string source into dst: a user pointer (a char * argument or field), or a __data_loc
 * field of the record. */
static __always_inline void read_str(const struct source *s, char *dst, struct pt_regs *regs,
				     void *tp)
{
	__u32 loc = 0;

	dst[0] = 0;
	if (s->kind == SRC_FIELD_DATALOC && tp) {
		bpf_probe_read_kernel(&loc, sizeof(loc), tp + (s->offset & 0xfff));
		bpf_probe_read_kernel_str(dst, STR_LEN, tp + (loc & 0xffff));
	} else if (s->kind != SRC_NONE) {
		bpf_probe_read_user_str(dst, STR_LEN, (void *)value_of(s, regs, tp));
	}
}

static __always_inline int probe_hit(void *ctx, struct pt_regs *regs, void *tp)
{
	__u32 probe = bpf_get_attach_cookie(ctx), zero = 0;
	struct probe_cfg *c = bpf_map_lookup_elem(&probe_cfg, &probe);
	struct count_key key = {.probe = probe, .user_stack = -1, .kernel_stack = -1};
	struct probe_event *e;
	__u64 id = bpf_get_current_pid_tgid();
	__s64 v;

	if (!c || current_is_self() || !current_selected() || !passes(c, regs, tp))
		return 0;
	if (c->by_pid)
		key.pid = id >> 32;
	if (c->user_stack) {
		key.user_stack = get_stack(ctx, true);
		if (c->mode != MODE_EVENT)  /* counting: the ring carries process notes only */
			note_process(id >> 32);
	}
	if (c->kernel_stack)
		key.kernel_stack = get_stack(ctx, false);
	switch (c->mode) {
	case MODE_COUNT:
	case MODE_STACK:
		count(&key);
		return 0;
	case MODE_HIST:
		v = value_of(&c->value, regs, tp);
		key.value = v > 0 ? log2_u64(v) + 1 : 0;  /* slot: bit length */
		count(&key);
		return 0;
	case MODE_FREQ:
		key.value = value_of(&c->value, regs, tp);
		count(&key);
		return 0;
	}
	e = bpf_map_lookup_elem(&event_scratch, &zero);
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->probe = probe;
	e->user_stack = key.user_stack;
	e->kernel_stack = key.kernel_stack;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	for (int i = 0; i < 6; i++)
		e->args[i] = regs ? arg_of(regs, i + 1) : 0;
	e->retval = regs ? PT_REGS_RC_CORE(regs) : 0;
	if (tp)
		bpf_probe_read_kernel(e->tp, TP_BYTES, tp);
	read_str(&c->strs[0], e->strs[0], regs, tp);
	read_str(&c->strs[1], e->strs[1], regs, tp);
	emit_event(e, sizeof(*e));
	return 0;
}

SEC("tracepoint")
int probe_tracepoint(void *ctx)
{
	return probe_hit(ctx, 0, ctx);
}

SEC("uprobe")
int probe_uprobe(struct pt_regs *ctx)
{
	return probe_hit(ctx, ctx, 0);
}

SEC("uretprobe")
int probe_uretprobe(struct pt_regs *ctx)
{
	return probe_hit(ctx, ctx, 0);
}
