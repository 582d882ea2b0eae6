// SPDX-License-Identifier: GPL-2.0
/* bashreadline: the command lines interactive bash shells read (BCC's bashreadline): a
 * uretprobe on bash's readline(), whose return value is the line typed. */
#include "common.bpf.h"
#include "events.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define LINE_LEN 256

struct readline_event {
	__u64 ts_ns;
	__u32 pid;
	__u32 uid;
	char comm[TASK_COMM_LEN];
	char line[LINE_LEN];
};
EVENT_RECORD(struct readline_event);

SEC("uretprobe")
int BPF_KRETPROBE(bashreadline_return, const char *line)
{
	struct readline_event *e;

	if (!line || current_is_self() || !current_selected())
		return 0;
	e = RESERVE_STAMPED(struct readline_event);
	if (!e)
		return 0;
	e->uid = (__u32)bpf_get_current_uid_gid();
	if (bpf_probe_read_user_str(e->line, sizeof(e->line), line) < 0)
		e->line[0] = 0;
	submit_event(e, sizeof(*e));
	return 0;
}
