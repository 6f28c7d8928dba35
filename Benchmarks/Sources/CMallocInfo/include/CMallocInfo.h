#ifndef CMALLOCINFO_H
#define CMALLOCINFO_H

#include <stddef.h>

/// Bytes of the heap in use (glibc's `mallinfo2().uordblks` plus mmapped chunks), or 0 where unknown.
size_t cmallocinfo_heap_in_use(void);

/// Calls to `fsync` and `fdatasync` in this process so far (0 where they are not counted).
size_t cmallocinfo_sync_count(void);

#endif
