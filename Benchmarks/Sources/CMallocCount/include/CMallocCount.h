#ifndef CMALLOCCOUNT_H
#define CMALLOCCOUNT_H

#include <stddef.h>

/// Starts counting allocations (malloc, calloc, realloc and the aligned allocations) of every thread.
void cmalloccount_start(void);

/// Stops counting and returns how many allocations were made since `cmalloccount_start`.
size_t cmalloccount_stop(void);

#endif
