/* Clocks. Thread-safe. */
#ifndef HARK_BASE_CLOCK_H
#define HARK_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t clock_mono_ns(void);    /* monotonic wall clock */
int64_t clock_thread_ns(void);  /* CPU time of the calling thread */
int64_t clock_process_ns(void); /* CPU time of the whole process */

/* The absolute time ns nanoseconds from now on clock id, as
 * pthread_cond_timedwait takes it (CLOCK_MONOTONIC for a condition variable
 * made with pthread_condattr_setclock, CLOCK_REALTIME otherwise). ns <= 0
 * gives now. */
struct timespec clock_deadline(clockid_t id, int64_t ns);

#endif
