/* CPython frames of the current thread, walked in the kernel at a sample: the interpreter's
 * thread state found by native thread id from _PyRuntime (whose address, and the struct offsets
 * of the process's CPython version, user space puts in py_procs), then the frame chain from the
 * current frame outwards. Each frame is recorded as its code object's address and the index of
 * its last instruction; bpfsight.pyframes turns those into `function (file:line)` by reading
 * the process's memory. A stack is stored once, under a hash of its frames. */
#ifndef BPFSIGHT_PYFRAMES_BPF_H
#define BPFSIGHT_PYFRAMES_BPF_H

#include "common.bpf.h"

#define PY_MAX_FRAMES 32  /* a power of two */
#define PY_MAX_THREADS 64

/* Offsets into CPython's structs for one version (bpfsight.pyframes.OFFSETS), and how the
 * version lays out what differs: 3.10 keeps heap frame objects with an instruction index and
 * names threads by pthread_t; 3.11 and 3.12 reach the frame through a _PyCFrame; 3.13 from
 * the thread state itself; 3.12 moved the interpreter lock into the interpreter state. */
#define PY_NONE 0xffffffff  /* an offset the version does not have */

enum py_thread_id { PY_THREAD_NATIVE_ID, PY_THREAD_PTHREAD };
enum py_lasti { PY_LASTI_POINTER, PY_LASTI_INDEX };

struct py_offsets {
	__u32 runtime_interpreters_head;
	__u32 interp_threads_head;
	__u32 tstate_next;
	__u32 tstate_thread_id;       /* the id matched against the sampled thread: */
	__u32 tstate_thread_id_kind;  /* enum py_thread_id */
	__u32 tstate_cframe;          /* 3.11, 3.12: the _PyCFrame of the thread; else PY_NONE */
	__u32 cframe_current_frame;   /* in the _PyCFrame, or else in the thread state */
	__u32 frame_code;
	__u32 frame_previous;
	__u32 frame_prev_instr;       /* the last instruction: */
	__u32 frame_lasti_kind;       /* enum py_lasti */
	__u32 frame_owner;            /* who owns the frame (a C-stack shim is skipped); PY_NONE */
	__u32 code_adaptive;          /* where the code object's instructions start */
	__u32 gil;                    /* the interpreter lock: in the runtime, or a pointer to */
	__u32 gil_via_interp;         /* it in the interpreter state (3.12+) */
	__u32 gil_last_holder;        /* the thread state that last took it */
	__u32 gil_locked;             /* whether it is held now */
	__u32 gil_size;               /* its size: a futex word inside is a wait for it */
};

/* Whether the sampled thread held the interpreter lock (the GIL): it did when the lock is
 * taken and the last thread state to take it is the thread's own. */
enum py_gil { PY_GIL_UNKNOWN, PY_GIL_HELD, PY_GIL_RELEASED };
#define PY_FRAME_OWNED_BY_CSTACK 3

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

/* The current thread's id as the interpreter stored it in its thread state. */
static __always_inline __u64 py_thread_id(struct py_proc *proc, __u32 tid)
{
	if (proc->off.tstate_thread_id_kind == PY_THREAD_NATIVE_ID)
		return tid;
#if defined(__TARGET_ARCH_x86)
	/* pthread_self() is the thread's TCB, which the fs base register points to */
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), thread.fsbase);
#else
	return 0;
#endif
}

/* The address of the interpreter lock's state (struct _gil_runtime_state); 0 if unknown. */
static __always_inline __u64 py_gil_addr(struct py_proc *proc, __u64 interp)
{
	return proc->off.gil_via_interp ? py_read(interp + proc->off.gil) :
					  proc->runtime + proc->off.gil;
}

/* Whether a futex word of process tgid belongs to its interpreter lock (the condition
 * variable and mutex a thread sleeps on to take the GIL). */
static __always_inline bool py_is_gil_word(__u32 tgid, __u64 uaddr)
{
	struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &tgid);
	__u64 gil;

	if (!proc)
		return false;
	gil = py_gil_addr(proc, py_read(proc->runtime + proc->off.runtime_interpreters_head));
	return gil && uaddr >= gil && uaddr < gil + proc->off.gil_size;
}

static __always_inline __u32 py_gil_of(struct py_proc *proc, __u64 interp, __u64 tstate)
{
	__u64 gil = py_gil_addr(proc, interp);

	if (!gil)
		return PY_GIL_UNKNOWN;
	return (__u32)py_read(gil + proc->off.gil_locked) == 1 &&
	       py_read(gil + proc->off.gil_last_holder) == tstate ? PY_GIL_HELD : PY_GIL_RELEASED;
}

struct py_walk {
	struct py_offsets off;
	__u64 frame;  /* the next frame to record */
	__u64 hash;   /* of the frames so far */
	bool found;   /* a frame with code was recorded */
};

/* bpf_loop's body: record frame i (its code object and last instruction) into the scratch
 * stack and step to the previous one; a C-stack shim (3.12+) is recorded as no code. */
static long py_walk_frame(__u32 i, void *data)
{
	struct py_walk *w = data;
	__u64 code, instr, owner = 0;
	struct py_stack *s;
	__u32 zero = 0, lasti = 0;
	__u64 k;

	if (!w->frame)
		return 1;
	code = py_read(w->frame + w->off.frame_code);
	instr = py_read(w->frame + w->off.frame_prev_instr);
	if (w->off.frame_owner != PY_NONE)
		owner = py_read(w->frame + w->off.frame_owner) & 0xff;
	w->frame = py_read(w->frame + w->off.frame_previous);
	if (owner == PY_FRAME_OWNED_BY_CSTACK)
		code = 0;
	if (w->off.frame_lasti_kind == PY_LASTI_INDEX)
		lasti = (__s32)instr >= 0 ? (__u32)instr : 0;
	else if (code && instr > code + w->off.code_adaptive)
		lasti = (instr - code - w->off.code_adaptive) / 2;
	s = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!s || i >= PY_MAX_FRAMES)
		return 1;
	/* the mask after a barrier: the compiler may not drop it, and the verifier sees the bound
	 * on the very register that indexes (a reload of i from the stack has none) */
	k = i;
	barrier_var(k);
	k &= PY_MAX_FRAMES - 1;
	lasti = code ? lasti : 0;
	s->code[k] = code;
	s->lasti[k] = lasti;
	w->found |= code != 0;
	w->hash = (w->hash ^ code) * 1099511628211ULL;
	w->hash = (w->hash ^ lasti) * 1099511628211ULL;
	return 0;
}

/* The CPython stack of the current thread of a process user space registered, stored in
 * py_stacks; its id (a hash of its frames), or 0 when there is none. *gil: enum py_gil. */
static __always_inline __u64 py_stack_of(__u32 tgid, __u32 tid, __u32 *gil)
{
	struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &tgid);
	__u64 interp, tstate, frame, id;
	struct py_walk walk;
	struct py_stack *s;
	__u32 zero = 0;
	int i;

	if (!proc)
		return 0;
	id = py_thread_id(proc, tid);
	interp = py_read(proc->runtime + proc->off.runtime_interpreters_head);
	tstate = py_read(interp + proc->off.interp_threads_head);
	for (i = 0; i < PY_MAX_THREADS && tstate; i++) {
		if (py_read(tstate + proc->off.tstate_thread_id) == id)
			break;
		tstate = py_read(tstate + proc->off.tstate_next);
	}
	if (!tstate || i == PY_MAX_THREADS)
		return 0;
	*gil = py_gil_of(proc, interp, tstate);
	frame = proc->off.tstate_cframe == PY_NONE ? tstate :
		py_read(tstate + proc->off.tstate_cframe);
	walk.frame = py_read(frame + proc->off.cframe_current_frame);
	walk.off = proc->off;
	walk.hash = 14695981039346656037ULL;
	walk.found = false;
	s = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!s || !walk.frame)
		return 0;
	__builtin_memset(s, 0, sizeof(*s));
	/* one frame per call: verified once, however many versions' branches it has */
	bpf_loop(PY_MAX_FRAMES, py_walk_frame, &walk, 0);
	if (!walk.found)
		return 0;
	bpf_map_update_elem(&py_stacks, &walk.hash, s, BPF_NOEXIST);
	return walk.hash;
}

#endif
