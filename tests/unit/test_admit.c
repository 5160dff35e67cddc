/* Admission (host/admit.c): one session count for every front end, bulk and
 * real-time sessions alike; refusals by reason; shutdown; the metrics. */
#include "base/clock.h"
#include "check.h"
#include "host/admit.h"

static void wake(void *user) {}

static double series(struct metrics *m, const char *line_prefix)
{
    struct buf b;
    buf_init(&b);
    metrics_render(m, &b);
    ASSERT(!b.oom);
    double v = -1;
    size_t n = strlen(line_prefix);
    for (const char *p = b.data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, line_prefix, n) && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    }
    buf_deinit(&b);
    return v;
}

static void test_count_and_refuse(void)
{
    struct workers *w;
    struct metrics *m;
    struct admit *a;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    ASSERT_OK(metrics_create(&m));
    struct admit_cfg cfg = {.max_sessions = 3,
                            .workers = 1,
                            .max_lag_ms = 1000,
                            .max_busy_percent = 90,
                            .pool = w,
                            .metrics = m};
    ASSERT_OK(admit_create(&a, &cfg));
    char msg[256];
    struct admit_slot *s[4] = {0};
    /* two live sessions (as a WebSocket and a NATS front end) and a batch upload */
    ASSERT_OK(admit_acquire(a, 1, &s[0], msg, sizeof msg));
    ASSERT_OK(admit_acquire(a, 1, &s[1], msg, sizeof msg));
    ASSERT_OK(admit_acquire(a, 0, &s[2], msg, sizeof msg));
    ASSERT_EQ(admit_sessions(a), 3);
    /* full for both kinds */
    ASSERT_EQ(admit_acquire(a, 1, &s[3], msg, sizeof msg), HARK_E_LIMIT);
    ASSERT(s[3] == NULL);
    ASSERT(strstr(msg, "too many sessions (max 3)"));
    ASSERT_EQ(admit_acquire(a, 0, &s[3], msg, sizeof msg), HARK_E_LIMIT);
    ASSERT_NEAR(series(m, "hark_sessions_active"), 3, 0);
    /* opened counts sessions that started, not admissions: a slot whose
     * session the backend refused opened nothing */
    ASSERT_NEAR(series(m, "hark_sessions_opened_total"), 0, 0);
    admit_started(s[0]);
    admit_started(s[1]);
    admit_started(s[1]); /* once per slot */
    ASSERT_NEAR(series(m, "hark_sessions_opened_total"), 2, 0);
    admit_started(s[2]);
    ASSERT_NEAR(series(m, "hark_sessions_opened_total"), 3, 0);
    ASSERT_NEAR(series(m, "hark_sessions_refused_total{reason=\"max_sessions\"}"), 2, 0);
    /* a session that ends frees its place for any front end */
    admit_audio(s[0], clock_mono_ns());
    admit_closing(s[0]);
    admit_release(s[0]);
    ASSERT_OK(admit_acquire(a, 1, &s[0], msg, sizeof msg));
    admit_tick(a);
    /* shutting down: refused, whatever the count */
    admit_release(s[1]);
    admit_drain(a);
    ASSERT_EQ(admit_acquire(a, 1, &s[1], msg, sizeof msg), HARK_E_BUSY);
    ASSERT(strstr(msg, "shutting down"));
    ASSERT_NEAR(series(m, "hark_sessions_refused_total{reason=\"shutting_down\"}"), 1, 0);
    ASSERT_NEAR(series(m, "hark_sessions_active"), 2, 0);
    ASSERT_NEAR(series(m, "hark_compute_demand_workers"), 0, 0);
    admit_release(s[0]);
    admit_release(s[2]);
    admit_release(NULL);
    ASSERT_EQ(admit_sessions(a), 0);
    admit_destroy(a);
    admit_destroy(NULL);
    metrics_destroy(m);
    workers_destroy(w);
}

static void test_no_metrics(void)
{
    struct workers *w;
    struct admit *a;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    struct admit_cfg cfg = {
        .max_sessions = 1, .workers = 1, .max_lag_ms = 50, .max_busy_percent = 10, .pool = w};
    ASSERT_OK(admit_create(&a, &cfg));
    char msg[128];
    struct admit_slot *s, *t;
    ASSERT_OK(admit_acquire(a, 1, &s, msg, sizeof msg));
    ASSERT_EQ(admit_acquire(a, 1, &t, msg, sizeof msg), HARK_E_LIMIT);
    admit_release(s);
    admit_destroy(a);
    workers_destroy(w);
}

int main(void)
{
    RUN(test_count_and_refuse);
    RUN(test_no_metrics);
    return 0;
}
