// SPDX-License-Identifier: GPL-2.0
/* capable: security capability checks (BCC's capable), one record per check, from the
 * capability:cap_capable tracepoint (Linux >= 6.13; BCC hooks cap_capable with a kprobe). The
 * tracepoint does not carry whether the check is audited, so every check is shown: BCC's -v. */
#include "common.bpf.h"
#include "events.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct cap_event {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 cap;
	__s32 ret;  /* 0: granted; -EPERM: refused */
	char comm[TASK_COMM_LEN];
};
EVENT_RECORD(struct cap_event);

BTF_TP(cap_capable, capable_check, const struct cred *cred, struct user_namespace *target_ns,
       const struct user_namespace *capable_ns, int cap, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cap_event *e;

	if (current_is_self() || !current_selected())
		return 0;
	e = RESERVE_STAMPED(struct cap_event);
	if (!e)
		return 0;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cap = cap;
	e->ret = ret;
	submit_event(e, sizeof(*e));
	return 0;
}
