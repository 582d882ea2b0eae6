/* execsnoop's record, shared with bpfsight.tools.execsnoop (decoded by field offsets). */
#ifndef BPFSIGHT_EXECSNOOP_H
#define BPFSIGHT_EXECSNOOP_H

#define ARGSIZE 128
#define TOTAL_MAX_ARGS 60
#define FULL_MAX_ARGS_ARR (TOTAL_MAX_ARGS * ARGSIZE)
#define LAST_ARG (FULL_MAX_ARGS_ARR - ARGSIZE)

struct exec_event {
	__u64 ts_ns;
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__s32 retval;
	__s32 args_count;
	__u32 args_size;
	char comm[16];
	char args[FULL_MAX_ARGS_ARR];
};

#endif
