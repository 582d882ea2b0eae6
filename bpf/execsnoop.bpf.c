// SPDX-License-Identifier: GPL-2.0
/* execsnoop: every execve/execveat with its full argv, pid, ppid, uid and return value.
 * Arguments are read at syscall entry (the old image's memory), the record is sent at exit
 * (when the result is known), sized to the arguments actually read. */
#include "common.bpf.h"
#include "events.bpf.h"
#include "execsnoop.h"

EVENT_RECORD(struct exec_event);	/* sent cut short after args_size bytes of args */

char LICENSE[] SEC("license") = "GPL";

#define INVALID_UID ((__u32)-1)

const volatile __u32 targ_uid = INVALID_UID;
const volatile __u32 targ_ppid = 0;
const volatile int max_args = 20;

static const struct exec_event empty_event;

/* Execs in flight (entry to exit). Not preallocated: 10240 x 7.7 KB would be 79 MB of kernel
 * memory and 15 ms of load time for a table that rarely holds more than a few entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct exec_event);
} execs SEC(".maps");

static __always_inline void exec_enter(const char *filename, const char *const *argv)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, uid = (__u32)bpf_get_current_uid_gid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_event *e;
	const char *argp;
	long ret;
	int i;

	if (current_is_self() || !current_selected())
		return;
	if (targ_uid != INVALID_UID && uid != targ_uid)
		return;
	if (targ_ppid && BPF_CORE_READ(task, real_parent, tgid) != targ_ppid)
		return;
	if (bpf_map_update_elem(&execs, &tid, &empty_event, BPF_NOEXIST))
		return;
	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->uid = uid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);

	ret = bpf_probe_read_user_str(e->args, ARGSIZE, filename);
	if (ret < 0)
		return;
	e->args_size = ret <= ARGSIZE ? ret : ARGSIZE;
	e->args_count = 1;
	for (i = 1; i < TOTAL_MAX_ARGS && i < max_args; i++) {
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) || !argp)
			return;
		if (e->args_size > LAST_ARG)
			return;
		ret = bpf_probe_read_user_str(&e->args[e->args_size], ARGSIZE, argp);
		if (ret < 0)
			return;
		e->args_count++;
		e->args_size += ret;
	}
	/* One more non-NULL pointer means argv was cut at max_args: user space prints "...". */
	if (!bpf_probe_read_user(&argp, sizeof(argp), &argv[max_args]) && argp)
		e->args_count++;
}

static __always_inline void exec_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_event *e;
	__u64 len;

	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return;
	e->retval = ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	len = __builtin_offsetof(struct exec_event, args) + e->args_size;
	if (len <= sizeof(*e))
		emit_event(e, len);
	bpf_map_delete_elem(&execs, &tid);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int execsnoop_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	exec_enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int execsnoop_enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	exec_enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int execsnoop_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	exec_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int execsnoop_exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	exec_exit(ctx->ret);
	return 0;
}
