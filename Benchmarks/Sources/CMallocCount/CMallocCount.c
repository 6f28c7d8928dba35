// Counts allocations for dlq-alloc-check: the executable defines malloc and its relatives, so every call in
// the process (the Swift runtime, Foundation, SQLite) comes here first and goes on to glibc's own
// implementation (__libc_malloc and its relatives, which glibc exports for such wrappers). Counting is one
// relaxed atomic increment while `counting` is set.
#include "CMallocCount.h"

#if defined(__linux__)
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static _Atomic int counting = 0;
static _Atomic size_t allocations = 0;

static inline void count(void) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    }
}

void *malloc(size_t size) {
    count();
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    count();
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    count();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) return ENOMEM;
    *out = pointer;
    return 0;
}

void cmalloccount_start(void) {
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
}

size_t cmalloccount_stop(void) {
    atomic_store(&counting, 0);
    return atomic_load(&allocations);
}

#else
void cmalloccount_start(void) {}
size_t cmalloccount_stop(void) { return 0; }
#endif
