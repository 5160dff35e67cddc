/* Metrics registry: exposition text line by line, a Prometheus-style line
 * format check on every render, exact totals under concurrent updates,
 * quantile estimates, bad registrations, allocation failures, update cost. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/clock.h"
#include "base/metrics.h"
#include "check.h"

/* ------------------------------------------------------- log capture */

static atomic_int log_errors;
static char log_last[1024];

static void capture_log(void *user, enum hark_log_level level, const char *sid, const char *msg)
{
    (void)user;
    (void)sid;
    if (level == HARK_LOG_ERROR) {
        atomic_fetch_add(&log_errors, 1);
        snprintf(log_last, sizeof log_last, "%s", msg);
    }
}

/* ------------------------------------------- exposition format check */

/* What Prometheus' text parser (format 0.0.4) would reject, plus the
 * histogram invariants: returns NULL when `text` is valid, else a message
 * naming the line. Checks: every line ends in \n, comments are "# HELP name
 * text" or "# TYPE name type" at most once per name and before its samples,
 * every other line is `name{label="value",...} value` with valid names,
 * escapes and a float value, a family's samples are contiguous, and each
 * histogram series has increasing le bounds, cumulative counts, a final +Inf
 * bucket and a _count equal to it. */
#define MAX_FAMILIES 64
struct expo_state {
    char names[MAX_FAMILIES][128]; /* family names seen, in order */
    char types[MAX_FAMILIES][16];
    int helped[MAX_FAMILIES];
    int typed[MAX_FAMILIES];
    int n;
    int current; /* family whose samples came last; -1 none */
    /* histogram series in progress */
    char hkey[512];
    double last_le;
    double last_bucket;
    int saw_inf;
    int in_series; /* hkey names a series of the current family */
};

static char expo_err[512];

static int name_char(char c, int first, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* Parses a name at *p; returns its length (0 if none). */
static size_t scan_name(const char *p, int colon)
{
    size_t n = 0;
    while (name_char(p[n], n == 0, colon))
        n++;
    return n;
}

static int parse_value(const char *s, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (strcmp(tmp, "+Inf") == 0 || strcmp(tmp, "-Inf") == 0 || strcmp(tmp, "NaN") == 0) {
        *out = strcmp(tmp, "NaN") == 0 ? NAN : tmp[0] == '+' ? INFINITY : -INFINITY;
        return 1;
    }
    /* Go's ParseFloat: no hex, no "inf"/"nan" spellings other than above. */
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", tmp[i]))
            return 0;
    char *end;
    *out = strtod(tmp, &end);
    return *end == 0;
}

static int family_index(struct expo_state *st, const char *name, size_t n, int create)
{
    for (int i = 0; i < st->n; i++)
        if (strlen(st->names[i]) == n && memcmp(st->names[i], name, n) == 0)
            return i;
    if (!create || st->n == MAX_FAMILIES || n >= sizeof st->names[0])
        return -1;
    memcpy(st->names[st->n], name, n);
    st->names[st->n][n] = 0;
    st->types[st->n][0] = 0;
    return st->n++;
}

static int suffix_is(const char *name, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n > k && memcmp(name + n - k, suf, k) == 0;
}

#define EXPO_FAIL(...)                                                                             \
    do {                                                                                           \
        int o_ = snprintf(expo_err, sizeof expo_err, "line %d: ", lineno);                         \
        snprintf(expo_err + o_, sizeof expo_err - (size_t)o_, __VA_ARGS__);                        \
        return expo_err;                                                                           \
    } while (0)

static const char *expo_check_sample(struct expo_state *st, const char *p, const char *eol,
                                     int lineno)
{
    size_t nlen = scan_name(p, 1);
    if (nlen == 0)
        EXPO_FAIL("no metric name");
    const char *name = p;
    p += nlen;
    char key[512] = ""; /* labels except le, for histogram series identity */
    size_t klen = 0;
    double le = NAN;
    int has_le = 0;
    char seen[8][64];
    int n_seen = 0;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            size_t ln = scan_name(p, 0);
            if (ln == 0 || ln >= sizeof seen[0])
                EXPO_FAIL("bad label name");
            for (int i = 0; i < n_seen; i++)
                if (strlen(seen[i]) == ln && memcmp(seen[i], p, ln) == 0)
                    EXPO_FAIL("duplicate label %.*s", (int)ln, p);
            if (n_seen == 8)
                EXPO_FAIL("too many labels");
            memcpy(seen[n_seen], p, ln);
            seen[n_seen++][ln] = 0;
            int is_le = ln == 2 && memcmp(p, "le", 2) == 0;
            const char *lname = p;
            p += ln;
            if (p[0] != '=' || p[1] != '"')
                EXPO_FAIL("expected =\" after label name");
            p += 2;
            const char *vstart = p;
            while (*p != '"') {
                if (p >= eol)
                    EXPO_FAIL("unterminated label value");
                if (*p == '\\') {
                    if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                        EXPO_FAIL("bad escape \\%c in label value", p[1]);
                    p++;
                }
                p++;
            }
            if (is_le) {
                if (!parse_value(vstart, (size_t)(p - vstart), &le))
                    EXPO_FAIL("le is not a number");
                has_le = 1;
            } else {
                int w = snprintf(key + klen, sizeof key - klen, "%.*s=%.*s,", (int)ln, lname,
                                 (int)(p - vstart), vstart);
                if (w > 0 && (size_t)w < sizeof key - klen)
                    klen += (size_t)w;
            }
            p++; /* closing quote */
            if (*p == ',')
                p++;
            else if (*p != '}')
                EXPO_FAIL("expected , or } after label value");
        }
        p++;
    }
    if (*p != ' ')
        EXPO_FAIL("expected one space before the value");
    p++;
    double v;
    if (!parse_value(p, (size_t)(eol - p), &v))
        EXPO_FAIL("value \"%.*s\" is not a float", (int)(eol - p), p);

    /* Which family: histograms own name_bucket/_sum/_count. */
    int fi = family_index(st, name, nlen, 0);
    const char *suffix = "";
    if (fi < 0) {
        static const char *const sufs[] = {"_bucket", "_sum", "_count"};
        for (int i = 0; i < 3 && fi < 0; i++) {
            if (suffix_is(name, nlen, sufs[i])) {
                int f = family_index(st, name, nlen - strlen(sufs[i]), 0);
                if (f >= 0 && strcmp(st->types[f], "histogram") == 0) {
                    fi = f;
                    suffix = sufs[i];
                }
            }
        }
    }
    if (fi < 0)
        EXPO_FAIL("sample %.*s has no # TYPE before it", (int)nlen, name);
    if (st->current != fi) {
        for (int i = 0; i < st->n; i++)
            if (i == fi && st->helped[i] < 0)
                EXPO_FAIL("samples of %s are not contiguous", st->names[fi]);
        if (st->current >= 0)
            st->helped[st->current] = -1; /* closed: no more samples allowed */
        st->current = fi;
        st->hkey[0] = 0;
        st->in_series = 0;
        st->saw_inf = 1;
    }
    const char *type = st->types[fi];
    if (strcmp(type, "counter") == 0 && !suffix_is(name, nlen, "_total"))
        EXPO_FAIL("counter %.*s does not end in _total", (int)nlen, name);
    if (strcmp(type, "counter") == 0 && !(v >= 0))
        EXPO_FAIL("counter %.*s is negative", (int)nlen, name);
    if (strcmp(type, "histogram") != 0) {
        if (has_le)
            EXPO_FAIL("le label outside a histogram");
        return NULL;
    }
    if (suffix[0] == 0)
        EXPO_FAIL("bare sample %.*s in a histogram", (int)nlen, name);
    if (strcmp(suffix, "_bucket") == 0) {
        if (!has_le)
            EXPO_FAIL("bucket without le");
        if (!st->in_series || strcmp(st->hkey, key) != 0) {
            if (!st->saw_inf)
                EXPO_FAIL("histogram series ended without a +Inf bucket");
            snprintf(st->hkey, sizeof st->hkey, "%s", key);
            st->last_le = -INFINITY;
            st->last_bucket = 0;
            st->saw_inf = 0;
            st->in_series = 1;
        } else if (st->saw_inf) {
            EXPO_FAIL("bucket after +Inf");
        }
        if (!(le > st->last_le))
            EXPO_FAIL("le %g not above previous %g", le, st->last_le);
        if (!(v >= st->last_bucket))
            EXPO_FAIL("bucket count %g below previous %g: not cumulative", v, st->last_bucket);
        st->last_le = le;
        st->last_bucket = v;
        st->saw_inf = isinf(le) && le > 0;
        return NULL;
    }
    if (has_le)
        EXPO_FAIL("le on %s", suffix);
    if (!st->in_series || strcmp(st->hkey, key) != 0 || !st->saw_inf)
        EXPO_FAIL("%s before its series' buckets ended in +Inf", suffix);
    if (strcmp(suffix, "_count") == 0 && v != st->last_bucket)
        EXPO_FAIL("_count %g differs from the +Inf bucket %g", v, st->last_bucket);
    return NULL;
}

static const char *expo_check(const char *text)
{
    struct expo_state st;
    memset(&st, 0, sizeof st);
    st.current = -1;
    st.saw_inf = 1;
    int lineno = 0;
    const char *p = text;
    while (*p) {
        lineno++;
        const char *eol = strchr(p, '\n');
        if (!eol)
            EXPO_FAIL("no final newline");
        if (eol == p)
            EXPO_FAIL("empty line");
        if (p[0] == '#') {
            int help = strncmp(p, "# HELP ", 7) == 0, type = strncmp(p, "# TYPE ", 7) == 0;
            if (!help && !type)
                EXPO_FAIL("comment is neither # HELP nor # TYPE");
            const char *name = p + 7;
            size_t n = scan_name(name, 1);
            if (n == 0 || name[n] != ' ')
                EXPO_FAIL("bad metric name in comment");
            int fi = family_index(&st, name, n, 1);
            if (fi < 0)
                EXPO_FAIL("too many families");
            if (st.helped[fi] < 0 || (st.current == fi))
                EXPO_FAIL("comment for %s after its samples", st.names[fi]);
            const char *rest = name + n + 1;
            if (help) {
                if (st.helped[fi]++)
                    EXPO_FAIL("second # HELP for %s", st.names[fi]);
                for (const char *q = rest; q < eol; q++)
                    if (*q == '\\' && (q[1] != '\\' && q[1] != 'n'))
                        EXPO_FAIL("bad escape in HELP");
                    else if (*q == '\\')
                        q++;
            } else {
                if (st.typed[fi]++)
                    EXPO_FAIL("second # TYPE for %s", st.names[fi]);
                size_t tn = (size_t)(eol - rest);
                static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
                int ok = 0;
                for (int i = 0; i < 5; i++)
                    ok |= strlen(types[i]) == tn && memcmp(types[i], rest, tn) == 0;
                if (!ok)
                    EXPO_FAIL("unknown type \"%.*s\"", (int)tn, rest);
                memcpy(st.types[fi], rest, tn);
                st.types[fi][tn] = 0;
            }
        } else {
            const char *e = expo_check_sample(&st, p, eol, lineno);
            if (e)
                return e;
        }
        p = eol + 1;
    }
    if (!st.saw_inf)
        EXPO_FAIL("histogram series ended without a +Inf bucket");
    return NULL;
}

/* Renders m and checks the text against the format. */
static void render_checked(struct metrics *m, struct buf *b)
{
    buf_reset(b);
    metrics_render(m, b);
    ASSERT(!b->oom);
    const char *e = expo_check(b->data ? b->data : "");
    if (e)
        FAIL_("exposition check: %s\n%s", e, b->data);
}

/* Compares text with the expected lines one by one, naming the first
 * difference. */
static void expect_lines(const char *text, const char *const *lines, size_t n)
{
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            FAIL_("line %zu missing; expected \"%s\"\nfull text:\n%s", i + 1, lines[i], text);
        if ((size_t)(eol - p) != strlen(lines[i]) || memcmp(p, lines[i], strlen(lines[i])) != 0)
            FAIL_("line %zu is \"%.*s\", expected \"%s\"\nfull text:\n%s", i + 1, (int)(eol - p), p,
                  lines[i], text);
        p = eol + 1;
    }
    if (*p)
        FAIL_("extra text after line %zu: \"%s\"", n, p);
}

#define EXPECT_LINES(text, ...)                                                                    \
    do {                                                                                           \
        const char *const l_[] = {__VA_ARGS__};                                                    \
        expect_lines((text), l_, sizeof l_ / sizeof l_[0]);                                        \
    } while (0)

/* ------------------------------------------------------------- tests */

static void test_format_checker_rejects(void)
{
    /* The checker must be able to fail, or the other tests prove nothing. */
    static const char *const bad[] = {
        "x_total 1",                                                         /* no newline */
        "x 1\n",                                                             /* no TYPE */
        "# TYPE x gauge\nx{a=\"b} 1\n",                                      /* unterminated */
        "# TYPE x gauge\nx{a=\"\\t\"} 1\n",                                  /* bad escape */
        "# TYPE x gauge\nx  1\n",                                            /* two spaces */
        "# TYPE x gauge\nx one\n",                                           /* not a float */
        "# TYPE x gauge\n# TYPE x gauge\nx 1\n",                             /* two TYPEs */
        "# TYPE x counter\nx 1\n",                                           /* no _total */
        "# TYPE x gauge\nx{a=\"1\"} 1\n# TYPE y gauge\ny 1\nx{a=\"2\"} 1\n", /* split */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
        "# TYPE x gauge\nx{1a=\"v\"} 1\n",        /* bad label name */
        "# TYPE x gauge\nx{a=\"v\",a=\"w\"} 1\n", /* duplicate label */
        "# TYPE x gauge\n\nx 1\n",                /* empty line */
        "# NOTE x\n",                             /* unknown comment */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!expo_check(bad[i]))
            FAIL_("checker accepted bad text #%zu: %s", i, bad[i]);
    ASSERT(
        expo_check("# HELP x a \\\\ b\\n\n# TYPE x gauge\nx{a=\"q\\\"\\n\\\\\",b=\"\"} -1.5e-07\n"
                   "x NaN\n") == NULL);
}

static void test_counter(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    struct metric *req = metrics_counter(m, "hark_requests", "Requests served.", NULL, NULL);
    struct metric *bytes = metrics_counter(m, "hark_audio_bytes_total", "Audio bytes.", NULL, NULL);
    ASSERT(req && bytes);
    /* Same name (with or without _total) and label: the same series. */
    ASSERT(metrics_counter(m, "hark_requests", "other help", NULL, NULL) == req);
    ASSERT(metrics_counter(m, "hark_requests_total", NULL, NULL, NULL) == req);

    struct buf b;
    buf_init(&b);
    render_checked(m, &b);
    EXPECT_LINES(b.data, "# HELP hark_requests_total Requests served.",
                 "# TYPE hark_requests_total counter", "hark_requests_total 0",
                 "# HELP hark_audio_bytes_total Audio bytes.",
                 "# TYPE hark_audio_bytes_total counter", "hark_audio_bytes_total 0");

    metrics_inc(req);
    metrics_inc(req);
    metrics_add(req, 3);
    metrics_add(req, 0.5);
    metrics_add(req, -4);    /* counters only go up: ignored */
    metrics_add(req, NAN);   /* ignored */
    metrics_observe(req, 1); /* wrong kind: ignored */
    ASSERT_NEAR(metrics_value(req), 5.5, 0);
    metrics_add(bytes, 1e6);
    metrics_add(bytes, 1e16); /* beyond 2^53: takes the double path */
    render_checked(m, &b);
    EXPECT_LINES(
        b.data, "# HELP hark_requests_total Requests served.", "# TYPE hark_requests_total counter",
        "hark_requests_total 5.5", "# HELP hark_audio_bytes_total Audio bytes.",
        "# TYPE hark_audio_bytes_total counter", "hark_audio_bytes_total 1.0000000001e+16");
    /* A counter mirroring a total kept elsewhere. */
    metrics_set(bytes, 7);
    ASSERT_NEAR(metrics_value(bytes), 7, 0);
    buf_deinit(&b);
    metrics_destroy(m);
}

static void test_labelled_counter(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    /* One series per hark error code, known at start-up. */
    struct metric *errs[32];
    size_t n = 0;
#define XX(sym, num, code, text)                                                                   \
    errs[n] = metrics_counter(m, "hark_errors", "Errors by code.", "code", code);                  \
    ASSERT(errs[n] != NULL);                                                                       \
    n++;
    HARK_ERR_MAP(XX)
#undef XX
    /* as many series as the table has codes (it grows: count it) */
#define XX(sym, num, code, text) +1
    enum { N_CODES = 0 HARK_ERR_MAP(XX) };
#undef XX
    ASSERT_EQ(n, N_CODES);
    ASSERT(N_CODES <= 32);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            ASSERT(errs[i] != errs[j]);
    ASSERT(metrics_counter(m, "hark_errors", NULL, "code", "bad_audio") == errs[3]);
    metrics_inc(errs[3]);
    metrics_add(errs[0], 2);

    struct buf b;
    buf_init(&b);
    render_checked(m, &b);
    const char *expect[2 + 32];
    char lines[32][96];
    expect[0] = "# HELP hark_errors_total Errors by code.";
    expect[1] = "# TYPE hark_errors_total counter";
    n = 0;
#define XX(sym, num, code, text)                                                                   \
    snprintf(lines[n], sizeof lines[n], "hark_errors_total{code=\"%s\"} %d", code,                 \
             n == 0   ? 2                                                                          \
             : n == 3 ? 1                                                                          \
                      : 0);                                                                        \
    expect[2 + n] = lines[n];                                                                      \
    n++;
    HARK_ERR_MAP(XX)
#undef XX
    expect_lines(b.data, expect, 2 + n);
    buf_deinit(&b);
    metrics_destroy(m);
}

static void test_gauge_and_grouping(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    /* Series of one family registered apart are rendered together, with
     * one HELP and one TYPE. */
    struct metric *ws = metrics_gauge(m, "hark_sessions", "Open sessions.", "front", "ws");
    struct metric *up = metrics_gauge(m, "hark_up", "", NULL, NULL);
    struct metric *nats = metrics_gauge(m, "hark_sessions", "ignored later help", "front", "nats");
    struct metric *ev = metrics_counter(m, "hark_events", "Events sent.", "type", "final");
    struct metric *ev2 = metrics_counter(m, "hark_events", NULL, "type", "partial");
    ASSERT(ws && up && nats && ev && ev2);
    metrics_inc(ws);
    metrics_inc(ws);
    metrics_add(ws, -1);
    metrics_add(nats, 2.25);
    metrics_set(up, 1);
    metrics_set(up, -0.125);
    metrics_inc(ev2);
    ASSERT_NEAR(metrics_value(ws), 1, 0);
    ASSERT_NEAR(metrics_value(up), -0.125, 0);

    struct buf b;
    buf_init(&b);
    render_checked(m, &b);
    EXPECT_LINES(b.data, "# HELP hark_sessions Open sessions.", "# TYPE hark_sessions gauge",
                 "hark_sessions{front=\"ws\"} 1", "hark_sessions{front=\"nats\"} 2.25",
                 "# HELP hark_up ", "# TYPE hark_up gauge", "hark_up -0.125",
                 "# HELP hark_events_total Events sent.", "# TYPE hark_events_total counter",
                 "hark_events_total{type=\"final\"} 0", "hark_events_total{type=\"partial\"} 1");
    /* A later registration supplies the help an earlier one left empty. */
    ASSERT(metrics_gauge(m, "hark_up", "Server is up.", NULL, NULL) == up);
    metrics_set(up, 0.1);
    render_checked(m, &b);
    ASSERT(strstr(b.data, "# HELP hark_up Server is up.\n# TYPE hark_up gauge\nhark_up 0.1\n"));
    buf_deinit(&b);
    metrics_destroy(m);
}

static void test_histogram(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    const double bounds[] = {0.05, 0.1, 0.5, 1};
    struct metric *h = metrics_histogram(m, "hark_final_latency_seconds",
                                         "End of speech to final result.", NULL, NULL, bounds, 4);
    ASSERT(h);
    /* A trailing +Inf bound is implied, so this is the same family. */
    const double with_inf[] = {0.05, 0.1, 0.5, 1, INFINITY};
    ASSERT(metrics_histogram(m, "hark_final_latency_seconds", NULL, NULL, NULL, with_inf, 5) == h);

    struct buf b;
    buf_init(&b);
    render_checked(m, &b);
    EXPECT_LINES(b.data, "# HELP hark_final_latency_seconds End of speech to final result.",
                 "# TYPE hark_final_latency_seconds histogram",
                 "hark_final_latency_seconds_bucket{le=\"0.05\"} 0",
                 "hark_final_latency_seconds_bucket{le=\"0.1\"} 0",
                 "hark_final_latency_seconds_bucket{le=\"0.5\"} 0",
                 "hark_final_latency_seconds_bucket{le=\"1\"} 0",
                 "hark_final_latency_seconds_bucket{le=\"+Inf\"} 0",
                 "hark_final_latency_seconds_sum 0", "hark_final_latency_seconds_count 0");

    /* 0.05 sits on a bound: le is inclusive. */
    const double obs[] = {0.01, 0.05, 0.07, 0.25, 0.5, 0.75, 3, INFINITY};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        metrics_observe(h, obs[i]);
    metrics_observe(h, NAN); /* dropped */
    metrics_inc(h);          /* wrong kind: ignored */
    ASSERT_NEAR(metrics_value(h), 8, 0);
    ASSERT_NEAR(metrics_sum(h), 4.63, 1e-12); /* +Inf counted, not summed */
    render_checked(m, &b);
    EXPECT_LINES(b.data, "# HELP hark_final_latency_seconds End of speech to final result.",
                 "# TYPE hark_final_latency_seconds histogram",
                 "hark_final_latency_seconds_bucket{le=\"0.05\"} 2",
                 "hark_final_latency_seconds_bucket{le=\"0.1\"} 3",
                 "hark_final_latency_seconds_bucket{le=\"0.5\"} 5",
                 "hark_final_latency_seconds_bucket{le=\"1\"} 6",
                 "hark_final_latency_seconds_bucket{le=\"+Inf\"} 8",
                 "hark_final_latency_seconds_sum 4.63", "hark_final_latency_seconds_count 8");

    /* Labelled histograms, and one with only the +Inf bucket. */
    const double rtf_b[] = {0.25, 1};
    struct metric *r1 =
        metrics_histogram(m, "hark_rtf", "Compute/audio time.", "engine", "pocketsphinx", rtf_b, 2);
    struct metric *r2 = metrics_histogram(m, "hark_rtf", NULL, "engine", "sherpa", rtf_b, 2);
    struct metric *only = metrics_histogram(m, "hark_batch", "Batch size.", NULL, NULL, NULL, 0);
    ASSERT(r1 && r2 && only && r1 != r2);
    metrics_observe(r1, 0.125);
    metrics_observe(r2, 2);
    metrics_observe(only, 4);
    metrics_observe(only, 8);
    render_checked(m, &b);
    const char *tail = strstr(b.data, "# HELP hark_rtf");
    ASSERT(tail);
    EXPECT_LINES(tail, "# HELP hark_rtf Compute/audio time.", "# TYPE hark_rtf histogram",
                 "hark_rtf_bucket{engine=\"pocketsphinx\",le=\"0.25\"} 1",
                 "hark_rtf_bucket{engine=\"pocketsphinx\",le=\"1\"} 1",
                 "hark_rtf_bucket{engine=\"pocketsphinx\",le=\"+Inf\"} 1",
                 "hark_rtf_sum{engine=\"pocketsphinx\"} 0.125",
                 "hark_rtf_count{engine=\"pocketsphinx\"} 1",
                 "hark_rtf_bucket{engine=\"sherpa\",le=\"0.25\"} 0",
                 "hark_rtf_bucket{engine=\"sherpa\",le=\"1\"} 0",
                 "hark_rtf_bucket{engine=\"sherpa\",le=\"+Inf\"} 1",
                 "hark_rtf_sum{engine=\"sherpa\"} 2", "hark_rtf_count{engine=\"sherpa\"} 1",
                 "# HELP hark_batch Batch size.", "# TYPE hark_batch histogram",
                 "hark_batch_bucket{le=\"+Inf\"} 2", "hark_batch_sum 12", "hark_batch_count 2");
    buf_deinit(&b);
    metrics_destroy(m);
}

static void test_escaping(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    struct metric *s =
        metrics_counter(m, "odd", "Help with \\ and\nnewline and \"quotes\".", "v", "a\\b\"c\nd");
    struct metric *e = metrics_counter(m, "odd", NULL, "v", "");
    struct metric *u = metrics_counter(m, "odd", NULL, "v", "caf\xc3\xa9 {x=1}, y");
    ASSERT(s && e && u);
    metrics_inc(s);
    struct buf b;
    buf_init(&b);
    render_checked(m, &b);
    EXPECT_LINES(b.data, "# HELP odd_total Help with \\\\ and\\nnewline and \"quotes\".",
                 "# TYPE odd_total counter", "odd_total{v=\"a\\\\b\\\"c\\nd\"} 1",
                 "odd_total{v=\"\"} 0", "odd_total{v=\"caf\xc3\xa9 {x=1}, y\"} 0");
    buf_deinit(&b);
    metrics_destroy(m);
}

static void test_numbers(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    struct metric *g = metrics_gauge(m, "g", "", NULL, NULL);
    struct buf b;
    buf_init(&b);
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {-0.0, "0"},
        {1e300, "1e+300"},
        {123456789, "123456789"},
        {2.5e-7, "2.5e-07"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {-42, "-42"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        metrics_set(g, cases[i].v);
        render_checked(m, &b);
        char want[64];
        snprintf(want, sizeof want, "g %s", cases[i].text);
        EXPECT_LINES(b.data, "# HELP g ", "# TYPE g gauge", want);
        /* and it reads back as the same double */
        ASSERT(strtod(strrchr(b.data, ' ') + 1, NULL) == cases[i].v);
    }
    buf_deinit(&b);
    metrics_destroy(m);
}

static void test_bad_registrations(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    hark_log_set(capture_log, NULL, HARK_LOG_ERROR);
    const double ok_b[] = {1, 2};
    const double bad_order[] = {1, 1};
    const double bad_nan[] = {1, NAN};
    const double bad_inf[] = {INFINITY, 2};
    ASSERT(metrics_counter(m, "c", "", NULL, NULL));
    ASSERT(metrics_gauge(m, "lab", "", "k", "v"));
    ASSERT(metrics_histogram(m, "h", "", NULL, NULL, ok_b, 2));
    /* Each is refused, and the log says what was wrong. */
#define BAD(expr, needle)                                                                          \
    do {                                                                                           \
        log_last[0] = 0;                                                                           \
        int before_ = atomic_load(&log_errors);                                                    \
        if ((expr) != NULL)                                                                        \
            FAIL_("accepted: %s", #expr);                                                          \
        ASSERT_EQ(atomic_load(&log_errors), before_ + 1);                                          \
        if (!strstr(log_last, (needle)))                                                           \
            FAIL_("%s logged \"%s\", expected it to say \"%s\"", #expr, log_last, (needle));       \
    } while (0)
    BAD(metrics_counter(m, "", "", NULL, NULL), "expected [a-zA-Z_:][a-zA-Z0-9_:]*");
    BAD(metrics_counter(m, NULL, "", NULL, NULL), "bad metric name");
    BAD(metrics_counter(m, "9lives", "", NULL, NULL), "bad metric name \"9lives\"");
    BAD(metrics_gauge(m, "a-b", "", NULL, NULL), "bad metric name");
    BAD(metrics_gauge(m, "x", "", "a:b", "v"), "bad label name \"a:b\"");
    BAD(metrics_gauge(m, "x", "", "__reserved", "v"), "not starting with \"__\"");
    BAD(metrics_gauge(m, "x", "", "k", NULL), "both be given");
    BAD(metrics_gauge(m, "x", "", NULL, "v"), "both be given");
    BAD(metrics_histogram(m, "x", "", "le", "v", ok_b, 2), "bad label name \"le\"");
    BAD(metrics_gauge(m, "c_total", "", NULL, NULL),
        "c_total is registered as a counter, not a gauge");
    BAD(metrics_gauge(m, "h", "", NULL, NULL), "registered as a histogram");
    /* Names a histogram's samples use, either way round. */
    BAD(metrics_gauge(m, "h_count", "", NULL, NULL),
        "clashes with the _count sample of histogram h");
    BAD(metrics_gauge(m, "h_bucket", "", NULL, NULL), "_bucket sample");
    ASSERT(metrics_gauge(m, "y_sum", "", NULL, NULL));
    BAD(metrics_histogram(m, "y", "", NULL, NULL, ok_b, 2), "y_sum clashes");
    BAD(metrics_histogram(m, "h_sum", "", NULL, NULL, ok_b, 2), "h_sum clashes");
    ASSERT(metrics_histogram(m, "z_count", "", NULL, NULL, ok_b, 2));
    BAD(metrics_histogram(m, "z", "", NULL, NULL, ok_b, 2), "z_count clashes");
    BAD(metrics_gauge(m, "lab", "", "other", "v"), "label name \"k\", not \"other\"");
    BAD(metrics_gauge(m, "lab", "", NULL, NULL), "not \"(none)\"");
    BAD(metrics_histogram(m, "h", "", NULL, NULL, ok_b, 1), "other bucket bounds");
    BAD(metrics_histogram(m, "h2", "", NULL, NULL, bad_order, 2), "h2: bucket bound 1 (1) invalid");
    BAD(metrics_histogram(m, "h2", "", NULL, NULL, bad_nan, 2), "strictly increasing");
    BAD(metrics_histogram(m, "h2", "", NULL, NULL, bad_inf, 2), "bucket bound 0 (inf)");
    BAD(metrics_histogram(m, "h2", "", NULL, NULL, NULL, 2), "no bounds array");
#undef BAD
    hark_log_set(NULL, NULL, HARK_LOG_WARN);

    /* A NULL registry lends NULL series; everything accepts them. */
    ASSERT(metrics_counter(NULL, "c", "", NULL, NULL) == NULL);
    metrics_inc(NULL);
    metrics_add(NULL, 1);
    metrics_set(NULL, 1);
    metrics_observe(NULL, 1);
    ASSERT(isnan(metrics_value(NULL)));
    ASSERT(isnan(metrics_sum(NULL)));
    ASSERT(isnan(metrics_quantile(NULL, 0.5)));
    ASSERT_EQ(metrics_on_render(NULL, NULL, NULL), HARK_E_INVAL);
    metrics_render(NULL, NULL);
    metrics_destroy(NULL);

    /* Failed registrations left nothing behind in the output. */
    struct buf b;
    buf_init(&b);
    render_checked(m, &b);
    ASSERT(!strstr(b.data, "h2") && !strstr(b.data, "# TYPE x "));
    buf_deinit(&b);
    metrics_destroy(m);
}

static int hook_calls;
static void refresh(void *user)
{
    hook_calls++;
    metrics_set(user, 42);
}

static void test_on_render(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    struct metric *g = metrics_gauge(m, "hark_queue_depth", "Jobs queued.", NULL, NULL);
    ASSERT_OK(metrics_on_render(m, refresh, g));
    ASSERT_EQ(hook_calls, 0);
    struct buf b;
    buf_init(&b);
    render_checked(m, &b);
    ASSERT_EQ(hook_calls, 1);
    EXPECT_LINES(b.data, "# HELP hark_queue_depth Jobs queued.", "# TYPE hark_queue_depth gauge",
                 "hark_queue_depth 42");
    render_checked(m, &b);
    ASSERT_EQ(hook_calls, 2);
    buf_deinit(&b);
    metrics_destroy(m);
}

static void test_quantile(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    const double tenths[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
    struct metric *u = metrics_histogram(m, "u", "", NULL, NULL, tenths, 10);
    ASSERT(isnan(metrics_quantile(u, 0.5))); /* empty */
    /* Uniform on [0, 1): interpolation inside equal-width buckets is exact. */
    for (int i = 0; i < 1000; i++)
        metrics_observe(u, (i + 0.5) / 1000);
    ASSERT_NEAR(metrics_quantile(u, 0.5), 0.5, 1e-9);
    ASSERT_NEAR(metrics_quantile(u, 0.9), 0.9, 1e-9);
    ASSERT_NEAR(metrics_quantile(u, 0.95), 0.95, 1e-9);
    ASSERT_NEAR(metrics_quantile(u, 0.05), 0.05, 1e-9);
    ASSERT_NEAR(metrics_quantile(u, 1), 1.0, 1e-9);
    ASSERT(isnan(metrics_quantile(u, -0.1)));
    ASSERT(isnan(metrics_quantile(u, 1.1)));
    ASSERT(isnan(metrics_quantile(u, NAN)));

    /* Latency-style buckets, uniform on [0, 2): each estimate is within the
     * width of the bucket holding the true quantile. */
    const double lat[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    struct metric *l = metrics_histogram(m, "l", "", NULL, NULL, lat, 10);
    for (int i = 0; i < 10000; i++)
        metrics_observe(l, 2.0 * (i + 0.5) / 10000);
    const double qs[] = {0.001, 0.01, 0.1, 0.5, 0.9, 0.95, 0.99};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double truth = 2.0 * qs[i];
        size_t k = 0;
        while (k < 9 && truth > lat[k]) /* truth < 2 < lat[8] */
            k++;
        double width = lat[k] - (k ? lat[k - 1] : 0);
        double est = metrics_quantile(l, qs[i]);
        if (!(fabs(est - truth) <= width))
            FAIL_("q=%g: estimate %g, true %g, bucket width %g", qs[i], est, truth, width);
    }
    ASSERT_NEAR(metrics_quantile(l, 0.5), 1.0, 1e-9);

    /* A rank in the +Inf bucket gives the highest finite bound. */
    struct metric *t = metrics_histogram(m, "t", "", NULL, NULL, tenths, 10);
    metrics_observe(t, 0.05);
    metrics_observe(t, 7);
    metrics_observe(t, 9);
    ASSERT_NEAR(metrics_quantile(t, 0.9), 1.0, 0);
    ASSERT_NEAR(metrics_quantile(t, 0.25), 0.075, 1e-12);
    /* Not a histogram, or no finite bucket. */
    struct metric *c = metrics_counter(m, "c", "", NULL, NULL);
    ASSERT(isnan(metrics_quantile(c, 0.5)));
    struct metric *z = metrics_histogram(m, "z", "", NULL, NULL, NULL, 0);
    metrics_observe(z, 1);
    ASSERT(isnan(metrics_quantile(z, 0.5)));
    metrics_destroy(m);
}

/* --------------------------------------------------------- concurrency */

#define THREADS 4
#define PER_THREAD 100000

struct shared {
    struct metric *counter, *frac, *gauge, *hist;
    atomic_int done;
};

/* Values are multiples of 1/1024, so every partial sum is exact in a double
 * and the total does not depend on the order the threads' adds land. */
static double sample(int i)
{
    return (double)(i % 1000) / 1024.0;
}

static void *worker(void *arg)
{
    struct shared *sh = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_inc(sh->counter);
        metrics_add(sh->frac, 0.25);
        metrics_add(sh->gauge, (i & 1) ? -1 : 3);
        metrics_observe(sh->hist, sample(i));
    }
    atomic_fetch_add(&sh->done, 1);
    return NULL;
}

static void test_concurrent(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    const double bounds[] = {0.25, 0.5, 0.75};
    struct shared sh = {
        .counter = metrics_counter(m, "ops", "", NULL, NULL),
        .frac = metrics_counter(m, "frac", "", NULL, NULL),
        .gauge = metrics_gauge(m, "level", "", NULL, NULL),
        .hist = metrics_histogram(m, "lat", "", NULL, NULL, bounds, 3),
    };
    ASSERT(sh.counter && sh.frac && sh.gauge && sh.hist);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, worker, &sh));
    /* Scrape while the workers run: every render must parse and stay
     * internally consistent. Bounded by the workers finishing. */
    struct buf b;
    buf_init(&b);
    int renders = 0;
    while (atomic_load(&sh.done) < THREADS && renders < 100000) {
        render_checked(m, &b);
        renders++;
    }
    for (int i = 0; i < THREADS; i++)
        ASSERT_OK(pthread_join(th[i], NULL));

    ASSERT_NEAR(metrics_value(sh.counter), THREADS * PER_THREAD, 0);
    ASSERT_NEAR(metrics_value(sh.frac), THREADS * PER_THREAD * 0.25, 0);
    ASSERT_NEAR(metrics_value(sh.gauge), THREADS * (PER_THREAD / 2) * 2, 0);
    ASSERT_NEAR(metrics_value(sh.hist), THREADS * PER_THREAD, 0);
    uint64_t want[4] = {0};
    double want_sum = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        double v = sample(i);
        want[v <= 0.25 ? 0 : v <= 0.5 ? 1 : v <= 0.75 ? 2 : 3] += THREADS;
        want_sum += THREADS * v;
    }
    ASSERT_NEAR(metrics_sum(sh.hist), want_sum, 0);
    render_checked(m, &b);
    char line[128];
    uint64_t cum = 0;
    const char *les[] = {"0.25", "0.5", "0.75", "+Inf"};
    for (int i = 0; i < 4; i++) {
        cum += want[i];
        snprintf(line, sizeof line, "\nlat_bucket{le=\"%s\"} %llu\n", les[i],
                 (unsigned long long)cum);
        if (!strstr(b.data, line))
            FAIL_("missing%sin:\n%s", line, b.data);
    }
    snprintf(line, sizeof line, "\nlat_count %llu\n", (unsigned long long)cum);
    ASSERT(strstr(b.data, line));
    snprintf(line, sizeof line, "\nops_total %d\n", THREADS * PER_THREAD);
    ASSERT(strstr(b.data, line));
    fprintf(stderr, "  %d renders checked while %d threads updated\n", renders, THREADS);
    buf_deinit(&b);
    metrics_destroy(m);
}

/* -------------------------------------------------------- update cost */

static void test_update_cost(void)
{
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    struct metric *c = metrics_counter(m, "c", "", NULL, NULL);
    struct metric *g = metrics_gauge(m, "g", "", NULL, NULL);
    struct metric *h = metrics_histogram(m, "h", "", NULL, NULL, bounds, 11);
    const int n = 1000000;
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < n; i++)
        metrics_inc(c);
    int64_t t1 = clock_mono_ns();
    for (int i = 0; i < n; i++)
        metrics_add(g, (i & 1) ? -1.5 : 2);
    int64_t t2 = clock_mono_ns();
    for (int i = 0; i < n; i++)
        metrics_observe(h, (double)(i % 12000) / 1000);
    int64_t t3 = clock_mono_ns();
    double inc_ns = (double)(t1 - t0) / n, add_ns = (double)(t2 - t1) / n,
           obs_ns = (double)(t3 - t2) / n;
    fprintf(stderr, "  per update, one thread: inc %.1f ns, gauge add %.1f ns, observe %.1f ns\n",
            inc_ns, add_ns, obs_ns);
    ASSERT_NEAR(metrics_value(c), n, 0);
    ASSERT_NEAR(metrics_value(h), n, 0);
    /* "Well under a microsecond", with room for sanitizers and a busy CI. */
    ASSERT_LE(inc_ns, 1000);
    ASSERT_LE(add_ns, 1000);
    ASSERT_LE(obs_ns, 1000);
    metrics_destroy(m);
}

/* ------------------------------------------------ allocation failures */

static void test_alloc_failures(void)
{
    struct metrics *m = NULL;
    mem_fail_after(1);
    ASSERT_EQ(metrics_create(&m), HARK_E_NOMEM);
    ASSERT(m == NULL);
    mem_fail_after(0);
    /* Fail each allocation of a registration in turn: NULL, nothing leaked,
     * and the registry still works afterwards. */
    const double bounds[] = {1, 2};
    int succeeded = 0;
    for (long k = 1; k < 40 && !succeeded; k++) {
        ASSERT_OK(metrics_create(&m));
        mem_fail_after(k);
        struct metric *h = metrics_histogram(m, "h", "help", "l", "v", bounds, 2);
        struct metric *c = h ? metrics_counter(m, "c", "help", "l", "v") : NULL;
        int hooked = c ? metrics_on_render(m, refresh, c) : -1;
        mem_fail_after(0);
        succeeded = h && c && hooked == 0;
        if (!succeeded) {
            /* Retrying without failures works. */
            ASSERT(metrics_histogram(m, "h", "help", "l", "v", bounds, 2));
            ASSERT(metrics_counter(m, "c", "help", "l", "v"));
        }
        struct buf b;
        buf_init(&b);
        render_checked(m, &b);
        buf_deinit(&b);
        metrics_destroy(m);
    }
    ASSERT(succeeded);
    /* Render into a buffer that cannot grow: oom is flagged, nothing breaks. */
    ASSERT_OK(metrics_create(&m));
    metrics_gauge(m, "g", "", NULL, NULL);
    struct buf b;
    buf_init(&b);
    mem_fail_after(1);
    metrics_render(m, &b);
    mem_fail_after(0);
    ASSERT(b.oom);
    buf_deinit(&b);
    metrics_destroy(m);
}

int main(void)
{
    RUN(test_format_checker_rejects);
    RUN(test_counter);
    RUN(test_labelled_counter);
    RUN(test_gauge_and_grouping);
    RUN(test_histogram);
    RUN(test_escaping);
    RUN(test_numbers);
    RUN(test_bad_registrations);
    RUN(test_on_render);
    RUN(test_quantile);
    RUN(test_concurrent);
    RUN(test_update_cost);
    RUN(test_alloc_failures);
    return 0;
}
