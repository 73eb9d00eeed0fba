/* SPDX-License-Identifier: MIT */
/*
 * Test-only LD_PRELOAD library: counts every heap allocation (malloc,
 * calloc, realloc, the aligned allocators) made by rpmsd's real-time
 * threads, recognised by the names rt_thread_start gives them
 * ("rpmsd-acquire", "rpmsd-stim"). At exit it writes one line per thread
 * name to the file named by $ALLOC_COUNT_OUT:
 *
 *     rpmsd-acquire 0
 *     rpmsd-stim 0
 *     other 1234
 *
 * "other" (main, publisher, libzmq) may allocate freely; the RT threads
 * must not, ever, once running (tests/integration/test_rt_alloc.py).
 *
 * The thread's name is read with prctl(PR_GET_NAME), which does not
 * allocate. The real allocator comes from dlsym(RTLD_NEXT); dlsym itself
 * may call calloc before that is known, so the first few requests are
 * served from a static arena that is never freed. The build hides
 * symbols by default: the interposed ones are exported explicitly.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#define ALLOC_EXPORT __attribute__((visibility("default")))

enum alloc_who {
	ALLOC_ACQUIRE,
	ALLOC_STIM,
	ALLOC_OTHER,
	ALLOC_N,
};

static const char *const alloc_names[ALLOC_N] = { "rpmsd-acquire", "rpmsd-stim", "other" };
static atomic_ulong alloc_counts[ALLOC_N];

static void *(*alloc_real_malloc)(size_t);
static void *(*alloc_real_calloc)(size_t, size_t);
static void *(*alloc_real_realloc)(void *, size_t);
static void (*alloc_real_free)(void *);
static int (*alloc_real_posix_memalign)(void **, size_t, size_t);
static void *(*alloc_real_aligned_alloc)(size_t, size_t);
static void *(*alloc_real_memalign)(size_t, size_t);

static _Alignas(16) unsigned char alloc_arena[16384];
static atomic_size_t alloc_arena_used;
static atomic_int alloc_resolving;

static void alloc_resolve(void)
{
	if (alloc_real_malloc) {
		return;
	}
	atomic_store(&alloc_resolving, 1);
	alloc_real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	alloc_real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	alloc_real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	alloc_real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	alloc_real_posix_memalign =
		(int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	alloc_real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	alloc_real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	atomic_store(&alloc_resolving, 0);
}

static void alloc_count(void)
{
	char name[17] = "";

	if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0) {
		name[0] = '\0';
	}
	if (strcmp(name, alloc_names[ALLOC_ACQUIRE]) == 0) {
		atomic_fetch_add(&alloc_counts[ALLOC_ACQUIRE], 1);
	} else if (strcmp(name, alloc_names[ALLOC_STIM]) == 0) {
		atomic_fetch_add(&alloc_counts[ALLOC_STIM], 1);
	} else {
		atomic_fetch_add(&alloc_counts[ALLOC_OTHER], 1);
	}
}

static void *alloc_from_arena(size_t n)
{
	size_t at = atomic_fetch_add(&alloc_arena_used, (n + 15) & ~(size_t)15);

	if (at + n > sizeof(alloc_arena)) {
		return NULL;
	}
	return alloc_arena + at;
}

static int alloc_in_arena(const void *p)
{
	return (const unsigned char *)p >= alloc_arena &&
	       (const unsigned char *)p < alloc_arena + sizeof(alloc_arena);
}

ALLOC_EXPORT void *malloc(size_t n)
{
	if (!alloc_real_malloc) {
		if (atomic_load(&alloc_resolving)) {
			return alloc_from_arena(n);
		}
		alloc_resolve();
	}
	alloc_count();
	return alloc_real_malloc(n);
}

ALLOC_EXPORT void *calloc(size_t n, size_t size)
{
	if (!alloc_real_calloc) {
		if (atomic_load(&alloc_resolving)) {
			/* the arena is static, so already zero */
			return size && n > SIZE_MAX / size ? NULL : alloc_from_arena(n * size);
		}
		alloc_resolve();
	}
	alloc_count();
	return alloc_real_calloc(n, size);
}

ALLOC_EXPORT void *realloc(void *p, size_t n)
{
	alloc_resolve();
	alloc_count();
	if (alloc_in_arena(p)) {
		void *q = alloc_real_malloc(n);

		if (q) {
			/* the old block's size is unknown: copy what the arena still holds */
			size_t room = (size_t)(alloc_arena + sizeof(alloc_arena) - (unsigned char *)p);

			memcpy(q, p, n < room ? n : room);
		}
		return q;
	}
	return alloc_real_realloc(p, n);
}

ALLOC_EXPORT void free(void *p)
{
	if (!p || alloc_in_arena(p)) {
		return;
	}
	alloc_resolve();
	alloc_real_free(p);
}

ALLOC_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	alloc_resolve();
	alloc_count();
	return alloc_real_posix_memalign(out, align, n);
}

ALLOC_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	alloc_resolve();
	alloc_count();
	return alloc_real_aligned_alloc(align, n);
}

ALLOC_EXPORT void *memalign(size_t align, size_t n)
{
	alloc_resolve();
	alloc_count();
	return alloc_real_memalign(align, n);
}

__attribute__((destructor)) static void alloc_report(void)
{
	const char *path = getenv("ALLOC_COUNT_OUT");
	FILE *f;
	int i;

	if (!path) {
		return;
	}
	f = fopen(path, "w");
	if (!f) {
		return;
	}
	for (i = 0; i < ALLOC_N; i++) {
		fprintf(f, "%s %lu\n", alloc_names[i], atomic_load(&alloc_counts[i]));
	}
	fclose(f);
}
