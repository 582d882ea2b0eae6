// SPDX-License-Identifier: GPL-2.0
/* pagefaults: page faults per process. Minor and major come from the software perf events
 * page-faults-min/-maj, which the kernel fires once it has handled a fault and knows whether
 * it needed I/O (the same figures as /proc/PID/stat, less faults taken on behalf of
 * get_user_pages). Every fault exception taken, in user or kernel mode and including those
 * that fail or retry, comes from the exceptions:page_fault_user/kernel tracepoints (x86).
 * With -f, each major fault's file is found from its address (bpf_find_vma). */
#include "common.bpf.h"
#include "maps.bpf.h"
#include "group.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile bool targ_files = false;

#define NAME_LEN 64

struct fault_val {
	__u64 minor;
	__u64 major;
	__u64 user;    /* exceptions taken in user mode */
	__u64 kernel;  /* in kernel mode, on user memory (copy_to_user and friends) */
	char comm[TASK_COMM_LEN];
};

struct file_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

struct file_val {
	__u64 major;
	char name[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct fault_val);
} faults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct file_key);
	__type(value, struct file_val);
} files SEC(".maps");

/* The exporter's: minor and major faults per comm and cgroup (group.bpf.h) */
struct group_faults {
	__u64 minor;
	__u64 major;
	__u32 pid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1);
	__type(key, struct group_key);
	__type(value, struct group_faults);
} group_faults SEC(".maps");

static const struct fault_val zero_fault;
static const struct group_faults zero_group;
static const struct file_val zero_file;

enum fault_field { MINOR, MAJOR, USER, KERNEL };

static __always_inline void count(enum fault_field field)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fault_val *v;

	if (!current_selected())
		return;
	if (targ_by_group) {
		struct group_key gk;
		struct group_faults *g;

		if (field != MINOR && field != MAJOR)
			return;
		group_key_of((struct task_struct *)bpf_get_current_task(), 0, &gk);
		g = lookup_or_try_init(&group_faults, &gk, &zero_group);
		if (!g)
			return;
		g->pid = tgid;
		if (field == MINOR)  /* per-CPU values: plain increments */
			g->minor++;
		else
			g->major++;
		return;
	}
	v = lookup_or_try_init(&faults, &tgid, &zero_fault);
	if (!v)
		return;
	/* per-CPU values: plain increments */
	if (field == MINOR)
		v->minor++;
	else if (field == MAJOR)
		v->major++;
	else if (field == USER)
		v->user++;
	else
		v->kernel++;
	if (!v->comm[0])
		bpf_get_current_comm(v->comm, sizeof(v->comm));
}

/* bpf_find_vma callback: charge the major fault to the mapping's file (anonymous memory, i.e.
 * swap-in, is inode 0). */
static long charge_file(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct file *file = BPF_CORE_READ(vma, vm_file);
	struct file_key key = {};
	struct file_val *v;
	struct dentry *dentry;

	if (file) {
		key.ino = BPF_CORE_READ(file, f_inode, i_ino);
		key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	}
	v = lookup_or_try_init(&files, &key, &zero_file);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->major, 1);
	if (file && !v->name[0]) {
		dentry = BPF_CORE_READ(file, f_path.dentry);
		bpf_probe_read_kernel_str(v->name, sizeof(v->name), BPF_CORE_READ(dentry, d_name.name));
	}
	return 0;
}

SEC("perf_event")
int pagefaults_minor(struct bpf_perf_event_data *ctx)
{
	count(MINOR);
	return 0;
}

SEC("perf_event")
int pagefaults_major(struct bpf_perf_event_data *ctx)
{
	count(MAJOR);
	if (targ_files && current_selected())
		bpf_find_vma(bpf_get_current_task_btf(), ctx->addr, charge_file, NULL, 0);
	return 0;
}

BTF_TP(page_fault_user, pagefaults_user, unsigned long address, struct pt_regs *regs,
       unsigned long error)
{
	count(USER);
	return 0;
}

BTF_TP(page_fault_kernel, pagefaults_kernel, unsigned long address, struct pt_regs *regs,
       unsigned long error)
{
	count(KERNEL);
	return 0;
}
