// SPDX-License-Identifier: GPL-2.0
/* profile: sample on-CPU stacks at a fixed rate with the software cpu-clock perf event (no
 * hardware PMU needed), counted in the kernel per (process, kernel stack, user stack). */
#include "common.bpf.h"
#include "stacks.bpf.h"
#include "pyframes.bpf.h"
#include "userstack.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool user_stacks_only = false;
const volatile bool kernel_stacks_only = false;
const volatile bool include_idle = false;
const volatile __u32 targ_tid = 0;
const volatile bool targ_python = false;  /* walk CPython frames of processes in py_procs */
const volatile bool dwarf_user = false;   /* --unwind dwarf: copy user stacks to the ring */

EVENT_RECORD(struct user_stack_sample);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);  /* --stack-storage-size */
	__type(key, struct profile_key);
	__type(value, __u64);
} counts SEC(".maps");

static const __u64 zero;

/* --unwind dwarf: send the sample (its user registers and stack, the kernel stack and Python
 * frames already walked) to user space, which unwinds and counts it; false when it could not
 * be copied, and the sample is counted here without a user stack. */
static __always_inline bool send_for_unwinding(struct bpf_perf_event_data *ctx,
					       bool user_mode, struct profile_key *key)
{
	struct user_stack_buf *buf = user_stack_buf();

	if (!buf)
		return false;
	if (user_mode) {
#if defined(__TARGET_ARCH_x86)
		buf->hdr.ip = *(volatile __u64 *)&ctx->regs.ip;
		buf->hdr.sp = *(volatile __u64 *)&ctx->regs.sp;
		buf->hdr.bp = *(volatile __u64 *)&ctx->regs.bp;
#endif
	} else if (!saved_user_regs(bpf_get_current_task_btf(), &buf->hdr)) {
		return false;
	}
	buf->hdr.pid = key->pid;
	buf->hdr.kern_stack_id = key->kern_stack_id;
	buf->hdr.py_stack_id = key->py_stack_id;
	buf->hdr.py_tid = key->py_tid;
	buf->hdr.py_gil = key->py_gil;
	__builtin_memcpy(buf->hdr.comm, key->comm, sizeof(buf->hdr.comm));
	emit_user_stack(buf);
	return true;
}

/* A sample taken in user mode has no kernel stack: skip the walk instead of counting a
 * failure for every user-mode sample. (The context allows only whole 8-byte loads, hence
 * the volatile reads.) */
static __always_inline bool in_user_mode(struct bpf_perf_event_data *ctx)
{
#if defined(__TARGET_ARCH_x86)
	return (*(volatile __u64 *)&ctx->regs.cs & 3) == 3;
#elif defined(__TARGET_ARCH_arm64)
	return (*(volatile __u64 *)&ctx->regs.pstate & 0xf) == 0;
#else
	return false;
#endif
}

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct profile_key key = {};
	bool user_mode = in_user_mode(ctx);
	__u64 *count;

	if (tid == 0 && !include_idle)
		return 0;
	if (targ_tid && tid != targ_tid)
		return 0;
	if (!current_selected())
		return 0;
	key.pid = tgid;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.kern_stack_id = key.user_stack_id = STACK_NONE;
	if (!user_stacks_only && !user_mode)
		key.kern_stack_id = get_stack(ctx, false);
	if (!kernel_stacks_only && tid && !is_kthread(task)) {
		note_process(tgid);
		if (targ_python) {
			key.py_stack_id = py_stack_of(tgid, tid, &key.py_gil);
			key.py_tid = key.py_gil ? tid : 0;  /* a Python thread */
		}
		if (dwarf_user && send_for_unwinding(ctx, user_mode, &key))
			return 0;
		key.user_stack_id = get_stack(ctx, true);
	}
	count = lookup_or_try_init(&counts, &key, &zero);
	if (!count) {
		count_error(ERR_COUNTS_FULL);
		return 0;
	}
	__sync_fetch_and_add(count, 1);
	return 0;
}
