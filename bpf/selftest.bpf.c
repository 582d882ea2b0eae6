// SPDX-License-Identifier: GPL-2.0
/* Programs that exercise the runtime itself (tests and bench/): a ring-buffer producer driven by
 * the target's syscalls, and programs that must fail in known ways (autoload off by default,
 * switched on by the test that wants the failure). */
#include "common.bpf.h"
#include "events.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct selftest_record {
	__u64 ts;
	__u32 pid;
	__u32 seq;
	__u64 id;
	__u64 a;
	__u64 b;
};

__u32 seq = 0;

/* One 40-byte record per syscall of the target process. */
SEC("tp_btf/sys_enter")
int BPF_PROG(selftest_produce, struct pt_regs *regs, long id)
{
	struct selftest_record *s;

	if (!targ_tgid || (bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	s = reserve_event(sizeof(*s));
	if (!s)
		return 0;
	s->ts = bpf_ktime_get_ns();
	s->pid = targ_tgid;
	s->seq = seq++;  /* racy across CPUs; only a rough order for tests */
	s->id = id;
	s->a = 1;
	s->b = 2;
	submit_event(s, sizeof(*s));
	return 0;
}

/* Reads past the end of its stack: the verifier must refuse it. */
SEC("?tp_btf/sys_enter")
int BPF_PROG(selftest_rejected, struct pt_regs *regs, long id)
{
	char buf[8] = {};
	volatile int i = 64;

	return buf[i & 0xff];
}

SEC("?tp_btf/bpfsight_no_such_tracepoint")
int BPF_PROG(selftest_missing_btf_tp)
{
	return 0;
}

SEC("?tracepoint/bpfsight/no_such_tracepoint")
int selftest_missing_tp(void *ctx)
{
	return 0;
}
