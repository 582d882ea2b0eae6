// SPDX-License-Identifier: GPL-2.0
/* ioctllat: ioctl(2) latency as log2 histograms keyed by command number (and process with -P).
 * Only the syscall tracepoints carry the command, so this uses the classic sys_enter/exit_ioctl
 * pair; the start time and command wait in task storage (no hash lookup on the hot path). */
#include "common.bpf.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_per_process = false;
const volatile bool targ_ms = false;
const volatile bool targ_filter_cmd = false;
const volatile __u32 targ_cmd = 0;

struct ioctl_start {
	__u64 ts;
	__u32 cmd;
	__u32 active;
};

struct ioctl_key {
	__u32 cmd;
	__u32 tgid;  /* 0 unless per process */
};

struct ioctl_val {
	struct hist h;
	__u64 errors;  /* calls that returned < 0 */
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ioctl_start);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ioctl_key);
	__type(value, struct ioctl_val);
} hists SEC(".maps");

static const struct ioctl_val zero_val;

SEC("tracepoint/syscalls/sys_enter_ioctl")
int ioctllat_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ioctl_start *s;
	__u32 cmd = (__u32)ctx->args[1];

	if (targ_filter_cmd && cmd != targ_cmd)
		return 0;
	if (current_is_self() || !current_selected())
		return 0;
	s = bpf_task_storage_get(&start, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s)
		return 0;
	s->cmd = cmd;
	s->active = 1;
	s->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int ioctllat_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct ioctl_key key = {};
	struct ioctl_start *s;
	struct ioctl_val *v;
	__u64 delta;

	s = bpf_task_storage_get(&start, task, 0, 0);
	if (!s || !s->active)
		return 0;
	s->active = 0;
	delta = bpf_ktime_get_ns() - s->ts;
	key.cmd = s->cmd;
	if (targ_per_process)
		key.tgid = bpf_get_current_pid_tgid() >> 32;
	v = lookup_or_try_init(&hists, &key, &zero_val);
	if (!v)
		return 0;
	if (!v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	if (ctx->ret < 0)
		__sync_fetch_and_add(&v->errors, 1);
	hist_add(&v->h, targ_ms ? delta / 1000000 : delta / 1000);
	return 0;
}
