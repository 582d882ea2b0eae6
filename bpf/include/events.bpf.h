/* The ring buffer a streaming tool ("snoop") writes to, with watermark wakeups and a drop
 * counter. Waking the reader per record slows the traced program ~8x; instead the reader is
 * woken once wakeup_bytes are waiting and otherwise polls on a short timeout. */
#ifndef BPFSIGHT_EVENTS_BPF_H
#define BPFSIGHT_EVENTS_BPF_H

#include "common.bpf.h"

/* The reader is woken per wakeup_bytes of records, or finds them at its 0.1 s poll; a tool
 * whose events are rare and wanted at once sets 1 (a wakeup per record: an irq_work each, which
 * cost tcpaccept ~17 us per accept and tcpconnlat ~1.8 us per state change here). */
const volatile __u64 wakeup_bytes = 16 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Records lost because the ring was full: user space sums and shows them. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} event_drops SEC(".maps");

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&event_drops, &zero);

	if (n)
		*n += 1;
}

/* Wake the reader each time the unread data crosses a multiple of wakeup_bytes, not at every
 * record once past it: a reader busy with a batch already comes back for the rest (poll is
 * ready while data waits), and a wakeup per record (an irq_work each) had cost ~1.5 us per
 * record to a process writing fast while the reader lagged. */
static __always_inline __u64 wakeup_flag(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	if (wakeup_bytes <= 1)
		return BPF_RB_FORCE_WAKEUP;
	return avail / wakeup_bytes != (avail + size) / wakeup_bytes ?
		BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* Names the type of the ring's records for user space, which decodes them by the object's
 * BTF (bpfsight.bpf.object.Object.record_dtype): clang emits no BTF for a type that only local
 * variables use, so a global pointer that is never read carries it. Write it once per tool,
 * e.g. EVENT_RECORD(struct open_event); */
#define EVENT_RECORD(type) type *events_record __attribute__((unused))

/* Copy a finished record into the ring. */
static __always_inline void emit_event(void *data, __u64 size)
{
	if (bpf_ringbuf_output(&events, data, size, wakeup_flag(size)))
		count_drop();
}

/* Reserve a fixed-size record in place (no copy); NULL means it was dropped and counted. */
static __always_inline void *reserve_event(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		count_drop();
	return e;
}

/* Reserve a `type` record and stamp what every snoop record has: ts_ns (now), pid (the current
 * process) and comm (its name). NULL when it was dropped (counted). */
#define RESERVE_STAMPED(type) ({						\
	type *__e = reserve_event(sizeof(type));				\
	if (__e) {								\
		__e->ts_ns = bpf_ktime_get_ns();				\
		__e->pid = bpf_get_current_pid_tgid() >> 32;			\
		bpf_get_current_comm(__e->comm, sizeof(__e->comm));		\
	}									\
	__e;									\
})

static __always_inline void submit_event(void *e, __u64 size)
{
	bpf_ringbuf_submit(e, wakeup_flag(size));
}

#endif
