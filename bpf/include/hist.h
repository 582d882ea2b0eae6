/* The histogram value shared by the kernel side and bpfsight.report.histogram.
 * slots[i] counts values v in [2^i, 2^(i+1)) with 0 and 1 both in slot 0 (BCC's log2 layout);
 * total is the exact sum of the values, so averages and cross-checks need no bucket guess. */
#ifndef BPFSIGHT_HIST_H
#define BPFSIGHT_HIST_H

#define MAX_SLOTS 32

struct hist {
	__u64 slots[MAX_SLOTS];
	__u64 total;
};

#endif
