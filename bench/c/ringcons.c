// SPDX-License-Identifier: GPL-2.0
/* The C ring-buffer consumer streaming is measured against: bpfsight's own producer
 * (selftest.bpf.o, one 40-byte record per syscall of TGID) read with libbpf's
 * ring_buffer__poll, with the same watermark wakeups and poll timeout as bpfsight's reader.
 * Usage: ringcons SELFTEST_OBJ TGID WAKEUP_BYTES; prints "records N getppid M drops D" after
 * SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <sys/syscall.h>

struct record {
	__u64 ts;
	__u32 pid;
	__u32 seq;
	__u64 id;
	__u64 a;
	__u64 b;
};

static volatile sig_atomic_t stop;
static unsigned long long records, getppids;

static void on_signal(int sig)
{
	stop = 1;
}

static int on_record(void *ctx, void *data, size_t size)
{
	const struct record *r = data;

	records++;
	getppids += r->id == SYS_getppid;
	return 0;
}

/* Write a `const volatile` global before load, found by name in .rodata's BTF. */
static int set_rodata(struct bpf_object *obj, const char *var, const void *val, size_t size)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, ".rodata");
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	size_t len;
	char *data;
	int id;

	if (!map || !btf || (id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC)) < 0)
		return -1;
	data = (char *)bpf_map__initial_value(map, &len);
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const char *name = btf__name_by_offset(btf, btf__type_by_id(btf, vs->type)->name_off);

		if (!strcmp(name, var) && vs->size == size) {
			memcpy(data + vs->offset, val, size);
			return 0;
		}
	}
	return -1;
}

static unsigned long long drops(struct bpf_object *obj)
{
	int fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "event_drops"));
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long vals[ncpu], sum = 0;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, vals))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

int main(int argc, char **argv)
{
	struct ring_buffer *rb;
	struct bpf_object *obj;
	__u32 tgid;
	__u64 wakeup;

	if (argc != 4) {
		fprintf(stderr, "usage: %s OBJ TGID WAKEUP_BYTES\n", argv[0]);
		return 2;
	}
	tgid = atoi(argv[2]);
	wakeup = strtoull(argv[3], NULL, 0);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || set_rodata(obj, "targ_tgid", &tgid, sizeof(tgid)) ||
	    set_rodata(obj, "wakeup_bytes", &wakeup, sizeof(wakeup)) || bpf_object__load(obj)) {
		fprintf(stderr, "open/load failed\n");
		return 1;
	}
	if (!bpf_program__attach(bpf_object__find_program_by_name(obj, "selftest_produce"))) {
		fprintf(stderr, "attach failed\n");
		return 1;
	}
	rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), on_record,
			      NULL, NULL);
	if (!rb)
		return 1;
	printf("attached\n");
	fflush(stdout);
	while (!stop)
		ring_buffer__poll(rb, 100);
	ring_buffer__consume(rb);
	printf("records %llu getppid %llu drops %llu\n", records, getppids, drops(obj));
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
