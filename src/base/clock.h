/* Clocks. Thread-safe. */
#ifndef HARK_BASE_CLOCK_H
#define HARK_BASE_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ns(void);    /* monotonic wall clock */
int64_t clock_thread_ns(void);  /* CPU time of the calling thread */
int64_t clock_process_ns(void); /* CPU time of the whole process */

#endif
