/* Metrics registry rendered as Prometheus text exposition format 0.0.4
 * (the server's /metrics).
 *
 * Model: a registry holds families (one name, HELP, TYPE, at most one label
 * name); a family holds series, one per label value, all known at start-up
 * (errors_total{code=...} has one series per hark error code). Each series is
 * a `struct metric *` that the registry owns and lends out until
 * metrics_destroy.
 *
 * Threads: registration (metrics_counter/gauge/histogram, metrics_on_render)
 * and metrics_render take the registry's lock and may allocate; do them at
 * start-up and from the scrape handler. Updates (metrics_inc/add/set/observe)
 * and reads (metrics_value/quantile) are lock-free atomics, never allocate,
 * and may run on any thread at any time while the registry lives.
 *
 * A NULL registry hands out NULL series, and every update and read accepts a
 * NULL series (updates do nothing, reads give NaN), so code can record
 * metrics unconditionally whether or not the embedder asked for them. An
 * update of the wrong kind (metrics_observe on a counter, metrics_add with a
 * negative value on a counter) is ignored, as are NaN values everywhere. */
#ifndef HARK_BASE_METRICS_H
#define HARK_BASE_METRICS_H

#include <stddef.h>

#include "base/buf.h"

struct metrics; /* a registry */
struct metric;  /* one time series; borrowed from the registry */

/* HARK_E_NOMEM on allocation failure. */
int metrics_create(struct metrics **out);
/* Frees the registry and every series it lent out. Accepts NULL. No other
 * thread may still use the registry or its series. */
void metrics_destroy(struct metrics *m);

/*
 * Registration. Returns the series for name+label, creating it on first use:
 * registering the same name and label value again returns the same series.
 * Series of one name form one family even when registered apart; the family
 * keeps the first non-empty help text and must keep one type, one label name
 * (or none), and for histograms one set of bounds.
 *
 * name matches [a-zA-Z_:][a-zA-Z0-9_:]*; a counter's name gets "_total"
 * appended unless it already ends in it. label_name matches
 * [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__", not "le" on histograms) or
 * is NULL for an unlabelled series; label_value is any text (escaped on
 * output). Strings are copied. Returns NULL, after logging why, when an
 * argument is invalid, conflicts with the family, or memory runs out.
 */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *label_name, const char *label_value);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *label_name, const char *label_value);
/* bounds: upper bucket bounds (`le`), finite and strictly increasing, copied;
 * a final +Inf may be given and is implied anyway. n_bounds may be 0 (only
 * the +Inf bucket). Latency histograms use seconds. */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *label_name, const char *label_value,
                                 const double *bounds, size_t n_bounds);

/* Counters: +1, +v (v >= 0). Gauges: +1, +v (any sign; -1 to decrement). */
void metrics_inc(struct metric *s);
void metrics_add(struct metric *s, double v);
/* Gauges; also counters that mirror a total kept elsewhere, refreshed from an
 * on_render callback (the caller keeps them monotonic). */
void metrics_set(struct metric *s, double v);
/* Histograms: counts v in the first bucket with v <= bound and adds it to the
 * sum. ±Inf land in the +Inf/first bucket but are left out of the sum, which
 * they would otherwise poison for the life of the process. */
void metrics_observe(struct metric *s, double v);

/* Counter or gauge value; a histogram's observation count. NaN for NULL. */
double metrics_value(const struct metric *s);
/* Sum of a histogram's finite observations; NaN for NULL or other kinds. */
double metrics_sum(const struct metric *s);
/* Estimate of the q-quantile (0 <= q <= 1) of a histogram by linear
 * interpolation inside the bucket holding the rank, as PromQL's
 * histogram_quantile does: the first bucket's lower edge is 0 (or its bound
 * when that is negative), and a rank in the +Inf bucket gives the highest
 * finite bound. NaN when empty, for q outside [0, 1], or for other kinds. */
double metrics_quantile(const struct metric *s, double q);

/* Runs cb(user) at the start of every render, with the registry lock held,
 * in the order added, to refresh gauges computed on demand. cb may update
 * series but must not register or render. HARK_E_NOMEM on allocation
 * failure; HARK_E_INVAL for a NULL registry or cb. */
int metrics_on_render(struct metrics *m, void (*cb)(void *user), void *user);

/* Appends the exposition text of every family, in registration order, to out
 * (check out->oom once afterwards). Renders are serialised. A concurrent
 * update may land in a histogram's buckets before its sum; each line is
 * still a value the series really had. */
void metrics_render(struct metrics *m, struct buf *out);

#endif
