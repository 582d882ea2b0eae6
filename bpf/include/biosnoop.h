/* biosnoop's record, shared with bpfsight.tools.biosnoop (decoded as one numpy dtype). */
#ifndef BPFSIGHT_BIOSNOOP_H
#define BPFSIGHT_BIOSNOOP_H

#define NO_QUEUE_TIME ((__u64)-1)

struct bio_event {
	__u64 ts;        /* completion, ns since boot */
	__u64 sector;
	__u64 qdelta;    /* entered the block layer -> issued to the driver; NO_QUEUE_TIME if unseen */
	__u64 delta;     /* issued -> completed */
	__u32 len;       /* bytes */
	__u32 dev;       /* MKDEV(major, minor) of the disk */
	__u32 cmd_flags;
	__u32 pid;       /* submitter; 0 if unknown */
	char comm[16];
};

#endif
