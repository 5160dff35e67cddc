/* The session rules of the host (src/host/limits.c), which both front ends
 * apply: first-message deadline, idle timeout, length limit, close on a
 * fatal error, the shutdown drain. Times are given, not read: every
 * boundary is exact. */
#include <string.h>

#include "base/err.h"
#include "check.h"
#include "host/limits.h"
#include "host/chan.h"

#define S 1000000000LL

static const struct limits_cfg cfg = {
    .first_message_timeout = 10,
    .idle_timeout = 30,
    .max_session_seconds = 60,
    .shutdown_timeout = 5,
};

static void test_first_message(void)
{
    struct limits_sess s;
    char msg[160];
    int code = 0;
    limits_open(&s, 100 * S);
    ASSERT_EQ(limits_check(&cfg, &s, 110 * S, 0, &code, msg, sizeof msg), LIMITS_OK);
    /* fragments do not extend the deadline: it runs from the opening */
    limits_activity(&s, 109 * S, 0);
    ASSERT_EQ(limits_check(&cfg, &s, 110 * S + 1, 0, &code, msg, sizeof msg), LIMITS_FIRST_MESSAGE);
    ASSERT_EQ(code, HARK_E_TIMEOUT);
    ASSERT(strstr(msg, "within 10 s of connecting"));
    /* a whole message meets it */
    limits_activity(&s, 109 * S, 1);
    ASSERT_EQ(limits_check(&cfg, &s, 110 * S + 1, 0, &code, msg, sizeof msg), LIMITS_OK);
    /* off */
    struct limits_cfg off = cfg;
    off.first_message_timeout = 0;
    limits_open(&s, 0);
    ASSERT_EQ(limits_check(&off, &s, 29 * S, 0, &code, msg, sizeof msg), LIMITS_OK);
}

static void test_idle(void)
{
    struct limits_sess s;
    char msg[160];
    int code = 0;
    limits_open(&s, 0);
    limits_activity(&s, 1 * S, 1);
    ASSERT_EQ(limits_check(&cfg, &s, 31 * S, 0, &code, msg, sizeof msg), LIMITS_OK);
    ASSERT_EQ(limits_check(&cfg, &s, 31 * S + 1, 0, &code, msg, sizeof msg), LIMITS_IDLE);
    ASSERT_EQ(code, HARK_E_TIMEOUT);
    ASSERT(strstr(msg, "30 s (idle timeout)"));
    /* the server stopped reading it (back-pressure): not idle */
    s.held = 1;
    ASSERT_EQ(limits_check(&cfg, &s, 100 * S, 0, &code, msg, sizeof msg), LIMITS_OK);
    s.held = 0;
    /* finals awaited from a network engine: the client waits for us; the
     * idle clock starts again when the last of them is in */
    limits_open(&s, 0);
    limits_activity(&s, 1 * S, 1);
    limits_awaiting(&s, 20 * S, 0);
    ASSERT_EQ(s.awaited, 0);
    for (int t = 20; t <= 60; t++)
        limits_awaiting(&s, t * S, 1);
    ASSERT_EQ(limits_check(&cfg, &s, 60 * S, 0, &code, msg, sizeof msg), LIMITS_OK);
    limits_awaiting(&s, 61 * S, 0); /* the result came */
    ASSERT_EQ(limits_check(&cfg, &s, 90 * S, 0, &code, msg, sizeof msg), LIMITS_OK);
    ASSERT_EQ(limits_check(&cfg, &s, 90 * S + 1, 0, &code, msg, sizeof msg), LIMITS_IDLE);
    /* closing: no verdicts at all */
    s.closing = 1;
    ASSERT_EQ(limits_check(&cfg, &s, 100 * S, 1000, &code, msg, sizeof msg), LIMITS_OK);
}

static void test_length(void)
{
    struct limits_sess s;
    char msg[160];
    int code = 0;
    limits_open(&s, 0);
    limits_activity(&s, 5 * S, 1);
    ASSERT_EQ(limits_check(&cfg, &s, 6 * S, 60.0, &code, msg, sizeof msg), LIMITS_OK);
    ASSERT_EQ(limits_check(&cfg, &s, 6 * S, 60.01, &code, msg, sizeof msg), LIMITS_LENGTH);
    ASSERT_EQ(code, HARK_E_LIMIT);
    ASSERT(strstr(msg, "60 s limit"));
    /* idle comes first when both apply (the older cause) */
    ASSERT_EQ(limits_check(&cfg, &s, 36 * S, 61, &code, msg, sizeof msg), LIMITS_IDLE);
}

static void test_fatal(void)
{
    struct limits_sess s;
    limits_open(&s, 0);
    ASSERT_EQ(limits_event(&s, MSG_SEQ | MSG_FINAL), LIMITS_OK);
    ASSERT_EQ(limits_event(&s, MSG_SEQ | MSG_FATAL), LIMITS_FATAL);
    s.closing = 1; /* once */
    ASSERT_EQ(limits_event(&s, MSG_SEQ | MSG_FATAL), LIMITS_OK);
}

static void test_drain(void)
{
    struct limits_drain d = {0};
    int code = 0;
    char msg[160];
    ASSERT_EQ(limits_drain_over(&d, 0, 0), 0); /* not draining: never over */
    ASSERT_EQ(limits_drain_begin(&d, &cfg, NULL, 10 * S), 1);
    ASSERT_EQ(limits_drain_begin(&d, &cfg, NULL, 11 * S), 0); /* once */
    ASSERT_EQ(limits_drain_over(&d, 12 * S, 3), 0);
    ASSERT_EQ(limits_drain_over(&d, 12 * S, 0), 1);     /* nothing left */
    ASSERT_EQ(limits_drain_over(&d, 15 * S + 1, 3), 1); /* deadline */
    limits_shutdown_msg(&code, msg, sizeof msg);
    ASSERT_EQ(code, HARK_E_BUSY);
    ASSERT(strstr(msg, "shutting down"));
}

int main(void)
{
    RUN(test_first_message);
    RUN(test_idle);
    RUN(test_length);
    RUN(test_fatal);
    RUN(test_drain);
    return 0;
}
