/* A copy of the user stack and registers at a sample, for unwinding in user space with the
 * objects' .eh_frame call-frame information (perf's --call-graph dwarf design): code built
 * without frame pointers (most distribution packages) defeats bpf_get_stackid's walk of the
 * frame-pointer chain. The copy goes to the events ring as a struct user_stack_sample followed
 * by its `size` bytes of stack from sp upwards; bpfsight.profile.unwind walks it.
 *
 * Why not unwind here: the tables would have to be built from every mapped object's .eh_frame
 * before the first sample (seconds for a large binary) and searched per frame in BPF; copying
 * costs ~16 KiB of memcpy per sample and leaves all of that to the reader, off the traced path. */
#ifndef BPFSIGHT_USERSTACK_BPF_H
#define BPFSIGHT_USERSTACK_BPF_H

#include "common.bpf.h"
#include "events.bpf.h"
#include "stacks.h"

#define PAGE_BYTES 4096

/* The sample's header and stack as they go to the ring; one page of slack after the stack so
 * that any read of up to a page at an offset below USER_STACK_BYTES stays inside the buffer
 * (which is what the verifier checks). */
struct user_stack_buf {
	struct user_stack_sample hdr;
	__u8 stack[USER_STACK_BYTES + PAGE_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct user_stack_buf);
} user_stack_scratch SEC(".maps");

/* Copy up to USER_STACK_BYTES from sp: page by page, so a stack that ends (the main thread's
 * top, a thread stack's guard) before the limit still yields every page below its end. */
static __always_inline __u32 copy_user_stack(__u8 *dst, __u64 sp)
{
	__u32 copied = 0;
	__u64 addr = sp;

	for (int i = 0; i <= USER_STACK_BYTES / PAGE_BYTES; i++) {
		__u32 chunk = PAGE_BYTES - (addr & (PAGE_BYTES - 1));

		if (copied >= USER_STACK_BYTES)
			break;
		if (chunk > USER_STACK_BYTES - copied)
			chunk = USER_STACK_BYTES - copied;
		if (bpf_probe_read_user(dst + copied, chunk, (void *)addr))
			break;
		copied += chunk;
		addr += chunk;
	}
	return copied;
}

/* The scratch record for this CPU, or NULL. */
static __always_inline struct user_stack_buf *user_stack_buf(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&user_stack_scratch, &zero);
}

/* The user registers the task saved on entering the kernel (a sample that hit the kernel, or a
 * thread switched out); false when there are none. */
static __always_inline bool saved_user_regs(struct task_struct *task, struct user_stack_sample *s)
{
#if defined(__TARGET_ARCH_x86)
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	if (!regs)
		return false;
	s->ip = BPF_CORE_READ(regs, ip);
	s->sp = BPF_CORE_READ(regs, sp);
	s->bp = BPF_CORE_READ(regs, bp);
	return true;
#else
	return false;  /* user space offers --unwind dwarf on x86-64 only */
#endif
}

/* Copy the stack above buf->hdr.sp into buf and send header and stack to the events ring
 * (a full ring is counted in event_drops). The caller has filled in the rest of the header. */
static __always_inline void emit_user_stack(struct user_stack_buf *buf)
{
	__u32 size = copy_user_stack(buf->stack, buf->hdr.sp);

	if (size > USER_STACK_BYTES)
		return;
	buf->hdr.size = size;
	emit_event(buf, sizeof(buf->hdr) + size);
}

#endif
