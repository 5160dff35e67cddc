#include "base/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct family;

/* Updates touch only this struct, which never moves once registered (the
 * family's series array holds pointers), so writers need no lock.
 * Doubles live in uint64_t atomics as their bit patterns: C11 has no
 * fetch_add for floating types, so those adds are compare-and-swap loops. */
struct metric {
    const struct family *fam;
    char *label_value;
    /* Counters split their value like the Go client does: whole increments
     * (the common case, metrics_inc) are one fetch_add here ... */
    _Atomic uint64_t whole;
    /* ... and fractional adds go to a double here. Gauge value; histogram
     * sum. */
    _Atomic uint64_t bits;
    /* Histograms: n_bounds + 1 per-bucket (not cumulative) counts, the last
     * for +Inf. The total count is their sum, so it needs no atomic of its
     * own and always agrees with the +Inf line. */
    _Atomic uint64_t *buckets;
};

struct family {
    char *name; /* counters: ends in _total */
    char *help;
    enum kind kind;
    char *label_name; /* NULL: series are unlabelled */
    double *bounds;   /* histograms */
    size_t n_bounds;
    struct metric **series;
    size_t n_series, cap_series;
};

struct render_hook {
    void (*cb)(void *user);
    void *user;
};

struct metrics {
    /* Guards the family and hook arrays (registration vs render) and
     * serialises renders, so on_render hooks never run concurrently. */
    pthread_mutex_t lock;
    struct family **families;
    size_t n_families, cap_families;
    struct render_hook *hooks;
    size_t n_hooks, cap_hooks;
};

/* ------------------------------------------------------------- atomics */

static uint64_t to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, to_bits(from_bits(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static double load_double(const _Atomic uint64_t *bits)
{
    return from_bits(atomic_load_explicit((_Atomic uint64_t *)bits, memory_order_relaxed));
}

static uint64_t load_u64(const _Atomic uint64_t *p)
{
    return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed);
}

/* ------------------------------------------------------------- updates */

void metrics_inc(struct metric *s)
{
    if (!s)
        return;
    if (s->fam->kind == KIND_COUNTER)
        atomic_fetch_add_explicit(&s->whole, 1, memory_order_relaxed);
    else if (s->fam->kind == KIND_GAUGE)
        add_double(&s->bits, 1.0);
}

void metrics_add(struct metric *s, double v)
{
    if (!s || isnan(v))
        return;
    switch (s->fam->kind) {
    case KIND_COUNTER:
        if (v < 0)
            return;
        /* 2^53: every whole double below it converts to uint64_t exactly. */
        if (v < 9007199254740992.0 && v == floor(v))
            atomic_fetch_add_explicit(&s->whole, (uint64_t)v, memory_order_relaxed);
        else
            add_double(&s->bits, v);
        return;
    case KIND_GAUGE:
        add_double(&s->bits, v);
        return;
    case KIND_HISTOGRAM:
        return;
    }
}

void metrics_set(struct metric *s, double v)
{
    if (!s || isnan(v) || s->fam->kind == KIND_HISTOGRAM)
        return;
    if (s->fam->kind == KIND_COUNTER)
        atomic_store_explicit(&s->whole, 0, memory_order_relaxed);
    atomic_store_explicit(&s->bits, to_bits(v), memory_order_relaxed);
}

void metrics_observe(struct metric *s, double v)
{
    if (!s || s->fam->kind != KIND_HISTOGRAM || isnan(v))
        return;
    /* First bound >= v; n_bounds (the +Inf bucket) when none is. */
    const double *b = s->fam->bounds;
    size_t lo = 0, hi = s->fam->n_bounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= b[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
    if (isfinite(v))
        add_double(&s->bits, v);
}

/* --------------------------------------------------------------- reads */

static uint64_t hist_count(const struct metric *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= s->fam->n_bounds; i++)
        n += load_u64(&s->buckets[i]);
    return n;
}

double metrics_value(const struct metric *s)
{
    if (!s)
        return NAN;
    switch (s->fam->kind) {
    case KIND_COUNTER:
        return (double)load_u64(&s->whole) + load_double(&s->bits);
    case KIND_GAUGE:
        return load_double(&s->bits);
    case KIND_HISTOGRAM:
        return (double)hist_count(s);
    }
    return NAN;
}

double metrics_sum(const struct metric *s)
{
    if (!s || s->fam->kind != KIND_HISTOGRAM)
        return NAN;
    return load_double(&s->bits);
}

double metrics_quantile(const struct metric *s, double q)
{
    if (!s || s->fam->kind != KIND_HISTOGRAM || !(q >= 0 && q <= 1))
        return NAN;
    const struct family *f = s->fam;
    uint64_t total = hist_count(s);
    if (total == 0)
        return NAN;
    /* The walk rereads live counts; they only grow, so it still reaches the
     * rank, at worst a little early while other threads observe. */
    double rank = q * (double)total;
    uint64_t below = 0;
    for (size_t i = 0; i < f->n_bounds; i++) {
        uint64_t c = load_u64(&s->buckets[i]);
        if (c > 0 && (double)(below + c) >= rank) {
            double upper = f->bounds[i];
            double lower = i > 0 ? f->bounds[i - 1] : (upper > 0 ? 0 : upper);
            return lower + (upper - lower) * ((rank - (double)below) / (double)c);
        }
        below += c;
    }
    /* The rank falls in the +Inf bucket: its width is unknown. */
    return f->n_bounds > 0 ? f->bounds[f->n_bounds - 1] : NAN;
}

/* -------------------------------------------------------- registration */

static int valid_name(const char *s, int colon_ok)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon_ok && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void family_free(struct family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_series; i++) {
        hark_free(f->series[i]->label_value);
        hark_free(f->series[i]->buckets);
        hark_free(f->series[i]);
    }
    hark_free(f->series);
    hark_free(f->name);
    hark_free(f->help);
    hark_free(f->label_name);
    hark_free(f->bounds);
    hark_free(f);
}

/* Checks that the arguments are well-formed; logs what is wrong. */
static int check_args(const char *name, enum kind kind, const char *label_name,
                      const char *label_value, const double *bounds, size_t n_bounds)
{
    if (!valid_name(name, 1)) {
        LOG_ERROR(NULL, "metrics: bad metric name \"%s\": expected [a-zA-Z_:][a-zA-Z0-9_:]*",
                  name ? name : "(null)");
        return 0;
    }
    if (label_name && (!valid_name(label_name, 0) || strncmp(label_name, "__", 2) == 0 ||
                       (kind == KIND_HISTOGRAM && strcmp(label_name, "le") == 0))) {
        LOG_ERROR(NULL,
                  "metrics: %s: bad label name \"%s\": expected [a-zA-Z_][a-zA-Z0-9_]* not "
                  "starting with \"__\" (and not \"le\" on a histogram)",
                  name, label_name);
        return 0;
    }
    if (!label_name != !label_value) {
        LOG_ERROR(NULL, "metrics: %s: label name and value must both be given or both be NULL",
                  name);
        return 0;
    }
    for (size_t i = 0; i < n_bounds; i++) {
        int last_inf = i + 1 == n_bounds && bounds[i] == INFINITY;
        if ((!isfinite(bounds[i]) && !last_inf) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            LOG_ERROR(NULL,
                      "metrics: %s: bucket bound %zu (%g) invalid: bounds must be finite and "
                      "strictly increasing (a final +Inf is allowed)",
                      name, i, bounds[i]);
            return 0;
        }
    }
    return 1;
}

/* The suffix when `sample` is one of the sample names histogram `hist`
 * emits (name_bucket, name_sum, name_count); else NULL. */
static const char *histogram_sample(const char *sample, const char *hist)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t n = strlen(hist);
    if (strncmp(sample, hist, n) != 0)
        return NULL;
    for (size_t i = 0; i < 3; i++)
        if (strcmp(sample + n, suffixes[i]) == 0)
            return suffixes[i];
    return NULL;
}

/* Finds or creates the family; m->lock held. NULL after logging on conflict
 * or allocation failure. */
static struct family *family_get(struct metrics *m, const char *name, const char *help,
                                 enum kind kind, const char *label_name, const double *bounds,
                                 size_t n_bounds)
{
    for (size_t i = 0; i < m->n_families; i++) {
        struct family *f = m->families[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (f->kind != kind) {
            LOG_ERROR(NULL, "metrics: %s is registered as a %s, not a %s", name,
                      kind_names[f->kind], kind_names[kind]);
            return NULL;
        }
        if (!same_str(f->label_name, label_name)) {
            LOG_ERROR(NULL, "metrics: %s has label name \"%s\", not \"%s\"", name,
                      f->label_name ? f->label_name : "(none)", label_name ? label_name : "(none)");
            return NULL;
        }
        if (kind == KIND_HISTOGRAM &&
            (f->n_bounds != n_bounds ||
             (n_bounds && memcmp(f->bounds, bounds, n_bounds * sizeof *bounds) != 0))) {
            LOG_ERROR(NULL,
                      "metrics: %s is registered with other bucket bounds; every series "
                      "of a histogram needs the same bounds",
                      name);
            return NULL;
        }
        if (!f->help[0] && help && help[0]) {
            char *h = hark_strdup(help);
            if (h) {
                hark_free(f->help);
                f->help = h;
            }
        }
        return f;
    }

    /* A histogram's samples are name_bucket/_sum/_count; a family by one of
     * those names would emit duplicate series that Prometheus rejects. */
    for (size_t i = 0; i < m->n_families; i++) {
        const struct family *o = m->families[i];
        const char *suffix = NULL, *sample = NULL, *hist = NULL;
        if (o->kind == KIND_HISTOGRAM && (suffix = histogram_sample(name, o->name)))
            sample = name, hist = o->name;
        else if (kind == KIND_HISTOGRAM && (suffix = histogram_sample(o->name, name)))
            sample = o->name, hist = name;
        if (suffix) {
            LOG_ERROR(NULL,
                      "metrics: %s clashes with the %s sample of histogram %s; every sample "
                      "name must belong to one family",
                      sample, suffix, hist);
            return NULL;
        }
    }

    struct family *f = NULL;
    if (m->n_families == m->cap_families) {
        size_t cap = m->cap_families ? 2 * m->cap_families : 16;
        struct family **fs = hark_realloc(m->families, cap * sizeof *fs);
        if (!fs)
            goto fail;
        m->families = fs;
        m->cap_families = cap;
    }
    f = hark_calloc(1, sizeof *f);
    if (!f)
        goto fail;
    f->kind = kind;
    f->name = hark_strdup(name);
    f->help = hark_strdup(help ? help : "");
    f->label_name = label_name ? hark_strdup(label_name) : NULL;
    f->n_bounds = n_bounds;
    f->bounds = n_bounds ? hark_malloc(n_bounds * sizeof *bounds) : NULL;
    if (!f->name || !f->help || (label_name && !f->label_name) || (n_bounds && !f->bounds))
        goto fail;
    if (n_bounds)
        memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
    m->families[m->n_families++] = f;
    return f;
fail:
    family_free(f);
    LOG_ERROR(NULL, "metrics: out of memory registering %s", name);
    return NULL;
}

static struct metric *series_get(struct metrics *m, const char *name_in, const char *help,
                                 enum kind kind, const char *label_name, const char *label_value,
                                 const double *bounds, size_t n_bounds)
{
    if (!m || !check_args(name_in, kind, label_name, label_value, bounds, n_bounds))
        return NULL;
    if (n_bounds && bounds[n_bounds - 1] == INFINITY)
        n_bounds--; /* implied */

    struct metric *s = NULL;
    char name_buf[256];
    const char *name = name_in;
    size_t len = strlen(name_in);
    if (kind == KIND_COUNTER && !(len >= 6 && strcmp(name_in + len - 6, "_total") == 0)) {
        if (len + 7 > sizeof name_buf) {
            LOG_ERROR(NULL, "metrics: counter name \"%s\" too long: at most %zu characters",
                      name_in, sizeof name_buf - 7);
            return NULL;
        }
        snprintf(name_buf, sizeof name_buf, "%s_total", name_in);
        name = name_buf;
    }

    pthread_mutex_lock(&m->lock);
    struct family *f = family_get(m, name, help, kind, label_name, bounds, n_bounds);
    if (!f)
        goto done;
    for (size_t i = 0; i < f->n_series; i++) {
        if (same_str(f->series[i]->label_value, label_value)) {
            s = f->series[i];
            goto done;
        }
    }
    if (f->n_series == f->cap_series) {
        size_t cap = f->cap_series ? 2 * f->cap_series : 4;
        struct metric **ss = hark_realloc(f->series, cap * sizeof *ss);
        if (!ss)
            goto oom;
        f->series = ss;
        f->cap_series = cap;
    }
    s = hark_calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->fam = f;
    if (label_value && !(s->label_value = hark_strdup(label_value)))
        goto oom;
    if (kind == KIND_HISTOGRAM && !(s->buckets = hark_calloc(n_bounds + 1, sizeof *s->buckets)))
        goto oom;
    atomic_init(&s->whole, 0);
    atomic_init(&s->bits, to_bits(0.0));
    for (size_t i = 0; s->buckets && i <= n_bounds; i++)
        atomic_init(&s->buckets[i], 0);
    f->series[f->n_series++] = s;
    goto done;
oom:
    if (s) {
        hark_free(s->label_value);
        hark_free(s->buckets);
        hark_free(s);
        s = NULL;
    }
    LOG_ERROR(NULL, "metrics: out of memory registering %s", name);
done:
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *label_name, const char *label_value)
{
    return series_get(m, name, help, KIND_COUNTER, label_name, label_value, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *label_name, const char *label_value)
{
    return series_get(m, name, help, KIND_GAUGE, label_name, label_value, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *label_name, const char *label_value,
                                 const double *bounds, size_t n_bounds)
{
    if (n_bounds && !bounds) {
        LOG_ERROR(NULL, "metrics: %s: %zu bounds but no bounds array", name ? name : "(null)",
                  n_bounds);
        return NULL;
    }
    return series_get(m, name, help, KIND_HISTOGRAM, label_name, label_value, bounds, n_bounds);
}

int metrics_on_render(struct metrics *m, void (*cb)(void *user), void *user)
{
    if (!m || !cb)
        return HARK_E_INVAL;
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    if (m->n_hooks == m->cap_hooks) {
        size_t cap = m->cap_hooks ? 2 * m->cap_hooks : 4;
        struct render_hook *hs = hark_realloc(m->hooks, cap * sizeof *hs);
        if (!hs) {
            rc = HARK_E_NOMEM;
            goto done;
        }
        m->hooks = hs;
        m->cap_hooks = cap;
    }
    m->hooks[m->n_hooks].cb = cb;
    m->hooks[m->n_hooks].user = user;
    m->n_hooks++;
done:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int metrics_create(struct metrics **out)
{
    *out = NULL;
    struct metrics *m = hark_calloc(1, sizeof *m);
    if (!m)
        return HARK_E_NOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        hark_free(m);
        return HARK_E_NOMEM;
    }
    *out = m;
    return 0;
}

void metrics_destroy(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_families; i++)
        family_free(m->families[i]);
    hark_free(m->families);
    hark_free(m->hooks);
    pthread_mutex_destroy(&m->lock);
    hark_free(m);
}

/* -------------------------------------------------------------- render */

/* Go's ParseFloat reads what this writes: shortest text that reads back as
 * the same double, whole numbers below 2^53 without an exponent (counts read
 * better as 1000000 than 1e+06), and NaN, +Inf, -Inf spelled as Prometheus
 * spells them. */
static void put_num(struct buf *b, double v)
{
    if (isnan(v)) {
        buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        buf_printf(b, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
        return;
    }
    char s[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    buf_puts(b, s);
}

/* Label values escape backslash, double quote and newline; HELP text
 * escapes only backslash and newline. */
static void put_escaped(struct buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else if (quote && *s == '"')
            buf_puts(b, "\\\"");
        else
            buf_putc(b, *s);
    }
}

/* `name[suffix]{label="value"[,le="bound"]} ` up to the value. */
static void put_series(struct buf *b, const struct metric *s, const char *suffix, const double *le)
{
    const struct family *f = s->fam;
    buf_puts(b, f->name);
    buf_puts(b, suffix);
    if (f->label_name || le) {
        buf_putc(b, '{');
        if (f->label_name) {
            buf_puts(b, f->label_name);
            buf_puts(b, "=\"");
            put_escaped(b, s->label_value, 1);
            buf_putc(b, '"');
            if (le)
                buf_putc(b, ',');
        }
        if (le) {
            buf_puts(b, "le=\"");
            put_num(b, *le);
            buf_putc(b, '"');
        }
        buf_putc(b, '}');
    }
    buf_putc(b, ' ');
}

static void render_histogram(struct buf *b, const struct metric *s)
{
    const struct family *f = s->fam;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= f->n_bounds; i++) {
        double le = i < f->n_bounds ? f->bounds[i] : INFINITY;
        cumulative += load_u64(&s->buckets[i]);
        put_series(b, s, "_bucket", &le);
        buf_printf(b, "%llu\n", (unsigned long long)cumulative);
    }
    put_series(b, s, "_sum", NULL);
    put_num(b, load_double(&s->bits));
    buf_putc(b, '\n');
    put_series(b, s, "_count", NULL);
    buf_printf(b, "%llu\n", (unsigned long long)cumulative);
}

void metrics_render(struct metrics *m, struct buf *out)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_hooks; i++)
        m->hooks[i].cb(m->hooks[i].user);
    for (size_t i = 0; i < m->n_families; i++) {
        const struct family *f = m->families[i];
        buf_printf(out, "# HELP %s ", f->name);
        put_escaped(out, f->help, 0);
        buf_printf(out, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (size_t j = 0; j < f->n_series; j++) {
            const struct metric *s = f->series[j];
            if (f->kind == KIND_HISTOGRAM) {
                render_histogram(out, s);
                continue;
            }
            put_series(out, s, "", NULL);
            put_num(out, metrics_value(s));
            buf_putc(out, '\n');
        }
    }
    pthread_mutex_unlock(&m->lock);
}
