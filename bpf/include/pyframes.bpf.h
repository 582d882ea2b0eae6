/* CPython frames of the current thread, walked in the kernel at a sample: the interpreter's
 * thread state found by native thread id from _PyRuntime (whose address, and the struct offsets
 * of the process's CPython version, user space puts in py_procs), then the frame chain from the
 * current frame outwards. Each frame is recorded as its code object's address and the index of
 * its last instruction; bpfsight.pyframes turns those into `function (file:line)` by reading
 * the process's memory. A stack is stored once, under a hash of its frames. */
#ifndef BPFSIGHT_PYFRAMES_BPF_H
#define BPFSIGHT_PYFRAMES_BPF_H

#include "common.bpf.h"

#define PY_MAX_FRAMES 32
#define PY_MAX_THREADS 64

/* Offsets into CPython's structs for one version (bpfsight.pyframes.OFFSETS). */
struct py_offsets {
	__u32 runtime_interpreters_head;
	__u32 interp_threads_head;
	__u32 tstate_next;
	__u32 tstate_native_thread_id;
	__u32 tstate_cframe;          /* 3.11: the _PyCFrame of the thread */
	__u32 cframe_current_frame;
	__u32 frame_code;
	__u32 frame_previous;
	__u32 frame_prev_instr;
	__u32 code_adaptive;          /* where the code object's instructions start */
};

struct py_proc {
	__u64 runtime;  /* the address of _PyRuntime in the process */
	struct py_offsets off;
};

struct py_stack {
	__u64 code[PY_MAX_FRAMES];   /* PyCodeObject *, innermost first; 0 ends the stack */
	__u32 lasti[PY_MAX_FRAMES];  /* last instruction, in code units from the code's start */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);  /* tgid */
	__type(value, struct py_proc);
} py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);  /* the stack's hash: the py_stack_id of a sample */
	__type(value, struct py_stack);
} py_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_stack);
} py_scratch SEC(".maps");

static __always_inline __u64 py_read(__u64 addr)
{
	__u64 v = 0;

	if (!addr || bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* The CPython stack of the current thread of a process user space registered, stored in
 * py_stacks; its id (a hash of its frames), or 0 when there is none. */
static __always_inline __u64 py_stack_of(__u32 tgid, __u32 tid)
{
	struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &tgid);
	__u64 tstate, frame, hash = 14695981039346656037ULL;
	struct py_stack *s;
	__u32 zero = 0;
	int i;

	if (!proc)
		return 0;
	tstate = py_read(py_read(proc->runtime + proc->off.runtime_interpreters_head) +
			 proc->off.interp_threads_head);
	for (i = 0; i < PY_MAX_THREADS && tstate; i++) {
		if (py_read(tstate + proc->off.tstate_native_thread_id) == tid)
			break;
		tstate = py_read(tstate + proc->off.tstate_next);
	}
	if (!tstate || i == PY_MAX_THREADS)
		return 0;
	frame = py_read(py_read(tstate + proc->off.tstate_cframe) + proc->off.cframe_current_frame);
	s = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!s || !frame)
		return 0;
	for (i = 0; i < PY_MAX_FRAMES; i++) {
		__u64 code = 0, instr = 0;

		if (frame) {
			code = py_read(frame + proc->off.frame_code);
			instr = py_read(frame + proc->off.frame_prev_instr);
			frame = py_read(frame + proc->off.frame_previous);
		}
		s->code[i] = code;
		s->lasti[i] = code && instr > code + proc->off.code_adaptive ?
			(instr - code - proc->off.code_adaptive) / 2 : 0;
		hash = (hash ^ code) * 1099511628211ULL;
		hash = (hash ^ s->lasti[i]) * 1099511628211ULL;
	}
	if (!s->code[0])
		return 0;
	bpf_map_update_elem(&py_stacks, &hash, s, BPF_NOEXIST);
	return hash;
}

#endif
