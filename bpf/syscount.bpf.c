// SPDX-License-Identifier: GPL-2.0
/* syscount: syscalls counted per syscall or per process, optionally with the time spent in
 * them. Counters are per CPU, so the hottest path in the kernel (every syscall exit) takes no
 * atomic. By syscall they sit in an array indexed by number, whose lookup the verifier inlines;
 * -P makes user space turn the map into a per-CPU hash keyed by pid. -L keeps each task's
 * entry time in task storage (task_start.bpf.h). */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "task_start.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool count_by_process = false;
const volatile bool measure_latency = false;
const volatile bool filter_failed = false;
const volatile int filter_errno = 0;

/* decoded by bpfsight.tools.syscount through the BTF */
struct syscall_stat {
	__u64 count;
	__u64 total_ns;
	char comm[TASK_COMM_LEN];
};

/* syscall numbers are below 1023 on every architecture we build for (x86_64 and arm64 ~470);
 * the last slot counts every number from 1023 up, such as x86_64's x32 calls (bit 30 set).
 * User side: bpfsight.syscalls.OTHER_NR. */
#define SYSCALL_SLOTS 1024
#define OTHER_NR (SYSCALL_SLOTS - 1)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYSCALL_SLOTS);
	__type(key, __u32);
	__type(value, struct syscall_stat);
} data SEC(".maps");

static const struct syscall_stat zero_stat;

/* The syscall number at exit: tp_btf/raw_tp sys_exit pass only (regs, ret), and the kernel's
 * syscall_get_nr() reads it from the saved registers. tp_btf's regs is a typed pointer, read
 * directly; raw_tp's needs a probe read. */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR_FIELD orig_ax
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR_FIELD syscallno
#else
#error "syscount: syscall number at exit unknown for this architecture"
#endif

static __always_inline bool traced(long nr)
{
	/* nr -1: no syscall (e.g. one skipped by ptrace or seccomp) */
	return nr >= 0 && !current_is_self() && current_selected();
}

static __always_inline void account(long nr, long ret, __u64 start)
{
	struct syscall_stat *v;
	__u32 key;

	if (measure_latency && !start)
		return;  /* entered before we attached */
	if (filter_failed && ret >= 0)
		return;
	if (filter_errno && ret != -filter_errno)
		return;
	if (count_by_process)
		key = bpf_get_current_pid_tgid() >> 32;
	else
		key = nr < OTHER_NR ? nr : OTHER_NR;
	v = lookup_or_try_init(&data, &key, &zero_stat);
	if (!v)
		return;
	/* per-CPU value and no nesting of this hook on a CPU: plain increments are exact */
	v->count++;
	if (measure_latency)
		v->total_ns += bpf_ktime_get_ns() - start;
	if (count_by_process && !v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
}

/* --- tp_btf: entry time in task storage (only loaded with -L) --- */

SEC("tp_btf/sys_enter")
int BPF_PROG(syscount_enter, struct pt_regs *regs, long id)
{
	if (traced(id))
		task_start_set(bpf_get_current_task_btf(), bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(syscount_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->SYSCALL_NR_FIELD;
	__u64 start = 0;

	if (!traced(nr))
		return 0;
	if (measure_latency)
		start = task_start_take(bpf_get_current_task_btf());
	account(nr, ret, start);
	return 0;
}

/* --- raw_tp fallback: entry time in a tid-keyed hash --- */

SEC("raw_tp/sys_enter")
int BPF_PROG(syscount_enter_raw, struct pt_regs *regs, long id)
{
	if (traced(id))
		tid_start_set((__u32)bpf_get_current_pid_tgid(), bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(syscount_exit_raw, struct pt_regs *regs, long ret)
{
	long nr = BPF_CORE_READ(regs, SYSCALL_NR_FIELD);
	__u64 start = 0;

	if (!traced(nr))
		return 0;
	if (measure_latency)
		start = tid_start_take((__u32)bpf_get_current_pid_tgid());
	account(nr, ret, start);
	return 0;
}
