// SPDX-License-Identifier: GPL-2.0
/* funclatency: latency of one user function as a log2 histogram, from a uprobe at its entry and
 * a uretprobe at its return. The entry time waits in a hash keyed by thread id, so a thread's
 * return always pairs with its own entry (a recursive call overwrites: the outermost is lost). */
#include "common.bpf.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 units_div = 1;  /* ns per output unit: 1, 1000 or 1000000 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

static const struct hist zero_hist;

/* BPF_KPROBE/BPF_KRETPROBE read the same registers in a uprobe (this libbpf has no BPF_UPROBE). */

SEC("uprobe")
int BPF_KPROBE(funclat_entry)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 ts;

	if (!current_selected())
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(funclat_return)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), zero = 0;
	struct hist *h;
	__u64 *ts, delta;

	ts = bpf_map_lookup_elem(&starts, &tid);
	if (!ts)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	bpf_map_delete_elem(&starts, &tid);
	h = lookup_or_try_init(&hists, &zero, &zero_hist);
	if (h)
		hist_add(h, delta / units_div);
	return 0;
}
