// SPDX-License-Identifier: GPL-2.0
/* exitsnoop: every process (or, with -T, thread) exit with its exit code or fatal signal and
 * its age. sched_process_exit runs in the exiting task after do_exit() stored exit_code, so
 * current is the task and exit_code is final. */
#include "common.bpf.h"
#include "events.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_threads = false;	/* -T: every thread, not only a process's leader */
const volatile bool targ_failed = false;	/* -x: only non-zero exit codes */

/* The ring's record, decoded by its BTF (EVENT_RECORD below). */
struct exit_event {
	__u64 start_ns;
	__u64 exit_ns;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__s32 exit_code;	/* wait(2) status: code << 8, or signal | 0x80 if it dumped core */
	char comm[TASK_COMM_LEN];
};
EVENT_RECORD(struct exit_event);

static __always_inline void process_exit(struct task_struct *task)
{
	__u32 pid = BPF_CORE_READ(task, tgid), tid = BPF_CORE_READ(task, pid);
	int code = BPF_CORE_READ(task, exit_code);
	struct exit_event *e;

	if (!targ_threads && pid != tid)
		return;
	if (targ_failed && !code)
		return;
	if (!task_selected(task))
		return;
	e = reserve_event(sizeof(*e));
	if (!e)
		return;
	e->start_ns = BPF_CORE_READ(task, start_time);
	e->exit_ns = bpf_ktime_get_ns();
	e->pid = pid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = code;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), task->comm);
	submit_event(e, sizeof(*e));
}

BTF_TP(sched_process_exit, exitsnoop_exit, struct task_struct *task)
{
	process_exit(task);
	return 0;
}
