#include "CMallocInfo.h"

#if defined(__linux__)
#define _GNU_SOURCE
#include <malloc.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__GLIBC__)
size_t cmallocinfo_heap_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
#else
size_t cmallocinfo_heap_in_use(void) { return 0; }
#endif

#if defined(__linux__)
// The executable's own fsync and fdatasync: SQLite (a shared library) calls these instead of libc's, so the
// suite can count its commits. Each is the system call itself, counted.
static _Atomic size_t sync_calls = 0;

int fsync(int fd) {
    atomic_fetch_add_explicit(&sync_calls, 1, memory_order_relaxed);
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd) {
    atomic_fetch_add_explicit(&sync_calls, 1, memory_order_relaxed);
    return (int)syscall(SYS_fdatasync, fd);
}

size_t cmallocinfo_sync_count(void) { return atomic_load_explicit(&sync_calls, memory_order_relaxed); }
#else
size_t cmallocinfo_sync_count(void) { return 0; }
#endif
