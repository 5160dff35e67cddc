/* Worker pool: per-session order, no lost or mixed events across many
 * concurrent sessions, release while a job runs, bounded queues, and live
 * sessions ahead of bulk ones. Runs real sessions on the real engine. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "check.h"
#include "session/event_json.h"
#include "session/evcopy.h"
#include "host/chan.h"

static struct hark_engine *eng;
static atomic_int wakes;

static void wake(void *user)
{
    atomic_fetch_add(&wakes, 1);
}

/* Renders "type:seq" so the test can check order per session. */
static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    buf_printf(out, "%s:%llu:%s", hark_event_type_name(ev->type), (unsigned long long)ev->seq,
               ev->type == HARK_EVENT_TRANSCRIPT && ev->is_final ? ev->text : "");
}

static unsigned char *clip_pcm(int k, size_t *n)
{
    static const char *ids[] = {"0870", "0880", "0890", "0920", "0930"};
    char path[512];
    snprintf(path, sizeof path, "%s/sense_and_sensibility_01_austen_64kb-%s.wav",
             check_testdata_dir(), ids[k]);
    size_t len;
    unsigned char *d = check_read_file(path, &len);
    ASSERT(d && len > 44);
    *n = len - 44;
    unsigned char *p = malloc(*n);
    memcpy(p, d + 44, *n);
    free(d);
    return p;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Collects all messages until the chan is done; returns the joined text of
 * finals and checks seq order and that CLOSED is last. */
static void drain_until_done(struct chan *c, char *finals, size_t size)
{
    uint64_t next_seq = 0;
    int done = 0, closed = 0;
    finals[0] = 0;
    for (int spins = 0; spins < 60000 && !closed; spins++) {
        done = chan_done(c);
        struct chan_msg *m = chan_take_msgs(c);
        while (m) {
            struct chan_msg *n = m->next;
            char type[32];
            unsigned long long seq;
            int off = 0;
            ASSERT(sscanf(m->data, "%31[^:]:%llu:%n", type, &seq, &off) == 2);
            ASSERT_EQ(seq, next_seq);
            next_seq++;
            ASSERT(!closed);
            if (!strcmp(type, "closed")) {
                closed = 1;
                ASSERT(m->flags & MSG_LAST);
            }
            if (m->data[off]) {
                if (finals[0])
                    strncat(finals, " ", size - strlen(finals) - 1);
                strncat(finals, m->data + off, size - strlen(finals) - 1);
            }
            hark_free(m);
            m = n;
        }
        if (!closed)
            sleep_ms(1);
    }
    ASSERT(done || closed);
    ASSERT(closed);
}

/* 6 sessions at once on 2 workers, audio in small jobs: each session's
 * events stay in order and its text equals the same clip run alone. */
static void test_concurrent_sessions(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 2, wake, NULL));
    char alone[5][2048];
    for (int k = 0; k < 5; k++) {
        struct chan *c;
        size_t n;
        unsigned char *pcm = clip_pcm(k, &n);
        ASSERT_OK(chan_create(&c, w, eng, NULL, NULL, render, NULL, 1 << 22, NULL, 0));
        ASSERT_OK(chan_post_audio(c, pcm, n));
        ASSERT_OK(chan_post_close(c));
        drain_until_done(c, alone[k], sizeof alone[k]);
        chan_release(c);
        free(pcm);
        ASSERT(alone[k][0]);
    }
    struct chan *cs[6];
    unsigned char *pcm[6];
    size_t n[6];
    for (int i = 0; i < 6; i++) {
        pcm[i] = clip_pcm(i % 5, &n[i]);
        ASSERT_OK(chan_create(&cs[i], w, eng, NULL, NULL, render, NULL, 1 << 22, NULL, 0));
    }
    /* interleave 20 ms jobs of all sessions */
    for (size_t off = 0;; off += 640) {
        int any = 0;
        for (int i = 0; i < 6; i++) {
            if (off < n[i]) {
                size_t len = n[i] - off < 640 ? n[i] - off : 640;
                ASSERT_OK(chan_post_audio(cs[i], pcm[i] + off, len));
                any = 1;
            }
        }
        if (!any)
            break;
    }
    for (int i = 0; i < 6; i++)
        ASSERT_OK(chan_post_close(cs[i]));
    for (int i = 0; i < 6; i++) {
        char text[2048];
        drain_until_done(cs[i], text, sizeof text);
        ASSERT_STR_EQ(text, alone[i % 5]);
        double audio, cpu;
        chan_usage(cs[i], &audio, &cpu);
        ASSERT_NEAR(audio, (double)n[i] / 32000.0, 0.01);
        ASSERT(cpu > 0);
        chan_release(cs[i]);
        free(pcm[i]);
    }
    /* closed chans refuse more work */
    ASSERT(atomic_load(&wakes) > 0);
    workers_destroy(w);
}

/* Limits and release: over max_pending is refused; posting after close is a
 * state error; releasing a chan with work queued or running frees it safely. */
static void test_limits_and_release(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    struct chan *c;
    size_t n;
    unsigned char *pcm = clip_pcm(0, &n);
    ASSERT_OK(chan_create(&c, w, eng, NULL, NULL, render, NULL, 64000, NULL, 0));
    ASSERT_EQ(chan_post_audio(c, pcm, 64001), HARK_E_LIMIT);
    ASSERT_OK(chan_post_audio(c, pcm, 32000));
    ASSERT_OK(chan_post_close(c));
    ASSERT_EQ(chan_post_audio(c, pcm, 10), HARK_E_STATE);
    chan_release(c); /* maybe running right now */

    /* release with a lot queued: the rest is dropped, nothing leaks */
    ASSERT_OK(chan_create(&c, w, eng, NULL, NULL, render, NULL, 1 << 22, NULL, 0));
    for (size_t off = 0; off + 640 <= n; off += 640)
        ASSERT_OK(chan_post_audio(c, pcm + off, 640));
    ASSERT(chan_pending_bytes(c) > 0);
    chan_release(c);
    free(pcm);
    workers_destroy(w); /* joins after the queued work */
}

/* A session far ahead of real time (bulk) does not delay a live one: with
 * one worker, the live session's jobs run before the bulk backlog. */
static void test_live_before_bulk(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    struct chan *bulk, *live;
    size_t n;
    unsigned char *pcm = clip_pcm(0, &n); /* 7.1 s */
    ASSERT_OK(chan_create(&bulk, w, eng, NULL, NULL, render, NULL, 1 << 24, NULL, 0));
    ASSERT_OK(chan_create(&live, w, eng, NULL, NULL, render, NULL, 1 << 22, NULL, 0));
    /* bulk: 5 copies back to back, posted at once (35 s of audio) */
    for (int k = 0; k < 5; k++)
        for (size_t off = 0; off < n; off += 32000)
            ASSERT_OK(chan_post_audio(bulk, pcm + off, n - off < 32000 ? n - off : 32000));
    sleep_ms(1500); /* bulk is now well ahead of the clock */
    ASSERT(chan_pending_bytes(bulk) > 0);
    size_t before = chan_pending_bytes(bulk);
    /* live: one 20 ms job, must run soon although bulk has seconds queued */
    ASSERT_OK(chan_post_audio(live, pcm, 640));
    int waited = 0;
    while (chan_pending_bytes(live) && waited < 3000) {
        sleep_ms(5);
        waited += 5;
    }
    ASSERT_EQ(chan_pending_bytes(live), 0);
    fprintf(stderr, "  live job ran after %d ms with %zu bulk bytes queued\n", waited, before);
    ASSERT_LE(waited, 1500);
    chan_release(live);
    chan_release(bulk);
    free(pcm);
    workers_destroy(w);
}

/* Holds the only worker inside a render until *gate is set, so that the
 * jobs of other chans stay queued while a test posts them. */
static void gate_render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    atomic_int *gate = user;
    for (int i = 0; i < 20000 && !atomic_load(gate); i++)
        sleep_ms(1);
    buf_puts(out, hark_event_type_name(ev->type));
}

/* Every queued job counts against the budget, controls coalesce, and small
 * audio frames share one buffer. On the old code only audio payload
 * counted: 1-byte frames interleaved with state changes were never refused
 * while each cost a whole allocation. */
static void test_budget_counts_every_job(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    atomic_int gate = 0;
    struct chan *blocker, *c;
    ASSERT_OK(chan_create(&blocker, w, eng, NULL, NULL, gate_render, &gate, 1 << 20, NULL, 0));
    /* Its CLOSED event holds the worker; every chan posted later queues
     * behind it on the ready list. */
    ASSERT_OK(chan_post_close(blocker));

    const size_t budget = 65536;
    ASSERT_OK(chan_create(&c, w, eng, NULL, NULL, render, NULL, budget, NULL, 0));
    /* finalize and state floods coalesce into one job each */
    for (int i = 0; i < 100000; i++)
        ASSERT_OK(chan_post_finalize(c));
    size_t one = chan_pending_bytes(c);
    ASSERT(one > 0 && one < 256);
    for (int i = 0; i < 100000; i++)
        ASSERT_OK(chan_post_state(c, i & 1 ? HARK_STATE_RESPONDING : HARK_STATE_LISTENING));
    ASSERT(chan_pending_bytes(c) < 2 * one + 1);
    /* 60000 one-byte frames fit the 64 KiB budget: they share buffers */
    static const unsigned char z[1];
    for (int i = 0; i < 60000; i++)
        ASSERT_OK(chan_post_audio(c, z, 1));
    ASSERT(chan_pending_bytes(c) <= budget);
    chan_release(c);

    /* 1-byte audio alternating with state changes cannot coalesce: each
     * pair costs jobs, and the budget refuses them long before 20000 */
    ASSERT_OK(chan_create(&c, w, eng, NULL, NULL, render, NULL, budget, NULL, 0));
    int refused = 0;
    for (int i = 0; i < 20000 && !refused; i++) {
        int rc = chan_post_audio(c, z, 1);
        if (!rc)
            rc = chan_post_state(c, i & 1 ? HARK_STATE_RESPONDING : HARK_STATE_LISTENING);
        if (rc) {
            ASSERT_EQ(rc, HARK_E_LIMIT);
            refused = i + 1;
        }
    }
    ASSERT(refused > 0 && refused < 100);
    ASSERT(chan_pending_bytes(c) <= budget);
    ASSERT_OK(chan_post_close(c)); /* never refused: it ends a full session */
    chan_release(c);

    atomic_store(&gate, 1);
    chan_release(blocker);
    workers_destroy(w);
}

/* A final rendered as three NUL-ended messages (MSG_MULTI): three chan
 * messages of its seq, in order; only the last carries MSG_FINAL; the
 * CLOSED event rendered as one stays one, with MSG_LAST. */
static void render_multi(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    if (ev->type == HARK_EVENT_TRANSCRIPT && ev->is_final) {
        buf_printf(out, "a:%llu", (unsigned long long)ev->seq);
        buf_putc(out, 0);
        buf_puts(out, "b");
        buf_putc(out, 0);
        buf_puts(out, "c");
        buf_putc(out, 0);
        *flags |= MSG_MULTI;
    } else if (ev->type == HARK_EVENT_CLOSED) {
        buf_puts(out, "closed");
        *flags |= MSG_MULTI; /* one piece without a NUL */
    }
}

static void test_multi_messages(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    struct chan *c;
    size_t n;
    unsigned char *pcm = clip_pcm(1, &n);
    ASSERT_OK(chan_create(&c, w, eng, NULL, NULL, render_multi, NULL, 1 << 22, NULL, 0));
    ASSERT_OK(chan_post_audio(c, pcm, n));
    ASSERT_OK(chan_post_close(c));
    int finals = 0, closed = 0;
    char want = 'a';
    uint64_t seq = 0;
    for (int spins = 0; spins < 60000 && !closed; spins++) {
        struct chan_msg *m = chan_take_msgs(c);
        while (m) {
            struct chan_msg *next = m->next;
            ASSERT(!closed);
            if (!strcmp(m->data, "closed")) {
                ASSERT(m->flags & MSG_LAST);
                ASSERT_EQ(want, 'a');
                closed = 1;
            } else {
                ASSERT_EQ(m->data[0], want);
                ASSERT_EQ(m->len, want == 'a' ? strlen(m->data) : 1);
                if (want == 'a')
                    seq = m->seq;
                ASSERT_EQ(m->seq, seq); /* one event */
                ASSERT_EQ(!!(m->flags & MSG_FINAL), want == 'c');
                ASSERT(!(m->flags & (MSG_LAST | MSG_MULTI)));
                finals += want == 'c';
                want = want == 'c' ? 'a' : (char)(want + 1);
            }
            hark_free(m);
            m = next;
        }
        if (!closed)
            sleep_ms(1);
    }
    ASSERT(closed);
    ASSERT(finals >= 1);
    chan_release(c);
    free(pcm);
    workers_destroy(w);
}

/* Native JSON, and for finals a second message (MSG_MULTI). */
static void render_json(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    (void)user;
    event_json_render(ev, out);
    if (ev->type == HARK_EVENT_TRANSCRIPT && ev->is_final) {
        buf_putc(out, 0);
        buf_printf(out, "{\"again\":%llu}", (unsigned long long)ev->seq);
        *flags |= MSG_MULTI;
    }
}

static struct chan_msg *take_all(struct chan *c)
{
    struct chan_msg *all = NULL, **tail = &all;
    for (int spins = 0; spins < 60000 && !chan_done(c); spins++)
        sleep_ms(1);
    ASSERT(chan_done(c));
    *tail = chan_take_msgs(c);
    return all;
}

/* A structured chan (no render) keeps deep copies of its events, which
 * outlive the session; rendered later (chan_render_msgs) they give exactly
 * the messages a chan rendering on the worker queues. The session host's
 * outbox relies on both (src/host/outbox.h). */
static void test_structured(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    struct hark_options *o;
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(hark_options_set(o, "words", "true", NULL, 0));
    size_t n;
    unsigned char *pcm = clip_pcm(1, &n);
    struct chan *cb, *cs;
    ASSERT_OK(chan_create(&cb, w, eng, o, "same-id", render_json, NULL, 1 << 22, NULL, 0));
    ASSERT_OK(chan_create(&cs, w, eng, o, "same-id", NULL, NULL, 1 << 22, NULL, 0));
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(chan_post_audio(i ? cs : cb, pcm, n));
        ASSERT_OK(chan_post_close(i ? cs : cb));
    }
    struct chan_msg *bytes = take_all(cb), *events = take_all(cs);
    chan_release(cb);
    chan_release(cs); /* the session and its strings are gone */
    workers_destroy(w);
    struct buf scratch;
    buf_init(&scratch);
    int n_events = 0, n_words = 0;
    struct chan_msg *b = bytes;
    for (struct chan_msg *e = events; e; e = e->next) {
        ASSERT((e->flags & MSG_EVENT) && e->ev && (e->flags & MSG_SEQ));
        ASSERT_EQ(e->seq, e->ev->seq);
        n_events++;
        if (e->ev->type == HARK_EVENT_TRANSCRIPT && e->ev->is_final)
            n_words += (int)e->ev->n_words;
        struct chan_msg *r;
        ASSERT_OK(chan_render_msgs(render_json, NULL, e, &scratch, &r));
        while (r) {
            ASSERT(b);
            ASSERT_EQ(r->flags, b->flags);
            ASSERT_EQ(r->seq, b->seq);
            ASSERT_EQ(r->segment, b->segment);
            ASSERT_EQ(r->len, b->len);
            ASSERT(!memcmp(r->data, b->data, b->len));
            struct chan_msg *nx = r->next;
            hark_free(r);
            r = nx;
            b = b->next;
        }
    }
    ASSERT(!b);           /* nothing the structured chan lacks */
    ASSERT(n_events > 3); /* partials, finals, closed */
    ASSERT(n_words > 3);
    buf_deinit(&scratch);
    for (struct chan_msg *l = bytes; l;) {
        struct chan_msg *nx = l->next;
        hark_free(l);
        l = nx;
    }
    for (struct chan_msg *l = events; l;) {
        struct chan_msg *nx = l->next;
        hark_free(l);
        l = nx;
    }
    hark_options_destroy(o);
    free(pcm);

    /* evcopy: every pointer of the copy is into its own block */
    struct hark_word wd[2] = {{"hello", 0.1, 0.4, 0.9f}, {"world", 0.5, 0.9, 0.8f}};
    char text[] = "hello world";
    struct hark_event ev = {.type = HARK_EVENT_TRANSCRIPT,
                            .seq = 7,
                            .session_id = "s",
                            .speaker_id = "",
                            .segment = 2,
                            .is_final = 1,
                            .text = text,
                            .words = wd,
                            .n_words = 2,
                            .language = "en"};
    size_t size = evcopy_size(&ev);
    _Alignas(EVCOPY_ALIGN) unsigned char block[512];
    ASSERT(size <= sizeof block);
    struct hark_event *c = evcopy_into(block, &ev);
    text[0] = 'X';
    wd[1].word = "other";
    ASSERT_STR_EQ(c->text, "hello world");
    ASSERT_STR_EQ(c->words[1].word, "world");
    ASSERT_EQ(c->n_words, 2);
    ASSERT_EQ(c->seq, 7);
    ASSERT(!c->message && !c->failover_reason);
    const char *ptrs[] = {c->text,       c->words[0].word, c->words[1].word,
                          c->session_id, c->speaker_id,    c->language};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        ASSERT((const unsigned char *)ptrs[i] >= block &&
               (const unsigned char *)ptrs[i] < block + size);
    ASSERT((const unsigned char *)c->words >= block);
}

/* The turn a render on the worker sees (hark_session_get_state inside the
 * session call), recorded per event. */
static void render_turn(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    struct chan **c = user;
    buf_printf(out, "%d", (int)hark_session_get_state(chan_session(*c)));
}

/* A structured chan's events carry the session's turn when they happened
 * (chan_msg.turn): what a render on the worker saw, event by event, also
 * across a state change between two clips; the NATS front end renders
 * seed 004's `state` from it on its own thread. */
static void test_structured_turn(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    struct hark_options *o;
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(hark_options_set(o, "interrupt_detection", "false", NULL, 0));
    size_t n1, n2;
    unsigned char *a = clip_pcm(1, &n1), *b = clip_pcm(2, &n2);
    struct chan *cb, *cs;
    ASSERT_OK(chan_create(&cb, w, eng, o, "t", render_turn, &cb, 1 << 23, NULL, 0));
    ASSERT_OK(chan_create(&cs, w, eng, o, "t", NULL, NULL, 1 << 23, NULL, 0));
    for (int i = 0; i < 2; i++) {
        struct chan *c = i ? cs : cb;
        ASSERT_OK(chan_post_audio(c, a, n1));
        ASSERT_OK(chan_post_finalize(c));
        ASSERT_OK(chan_post_state(c, HARK_STATE_RESPONDING));
        ASSERT_OK(chan_post_audio(c, b, n2));
        ASSERT_OK(chan_post_close(c));
    }
    struct chan_msg *seen = take_all(cb), *events = take_all(cs);
    chan_release(cb);
    chan_release(cs);
    workers_destroy(w);
    int listening = 0, responding = 0;
    struct chan_msg *s = seen;
    for (struct chan_msg *e = events; e; e = e->next, s = s->next) {
        ASSERT(s);
        ASSERT_EQ(e->seq, s->seq);
        ASSERT_EQ(e->turn, atoi(s->data));
        if (e->ev->type == HARK_EVENT_TRANSCRIPT) {
            listening += e->turn == HARK_STATE_LISTENING;
            responding += e->turn == HARK_STATE_RESPONDING;
        }
    }
    ASSERT(!s);
    ASSERT(listening > 0 && responding > 0);
    for (struct chan_msg *l = seen; l;) {
        struct chan_msg *nx = l->next;
        hark_free(l);
        l = nx;
    }
    for (struct chan_msg *l = events; l;) {
        struct chan_msg *nx = l->next;
        hark_free(l);
        l = nx;
    }
    hark_options_destroy(o);
    free(a);
    free(b);
}

/* Waits up to max_ms for the chan's queue to empty; returns the ms waited. */
static int wait_empty(struct chan *c, int max_ms)
{
    int waited = 0;
    while (chan_pending_bytes(c) && waited < max_ms) {
        sleep_ms(5);
        waited += 5;
    }
    return waited;
}

/* workers_set_hold: a live stream's frames wait out the hold and are decoded
 * together, one job per hold instead of one per frame; a control, or audio
 * piling up faster than real time, ends the hold at once; destroy does not
 * wait for holds. Without the hold each 20 ms frame arriving at an idle
 * worker is its own job (~50 per second). */
static void test_hold(void)
{
    struct workers *w;
    ASSERT_OK(workers_create(&w, 1, wake, NULL));
    workers_set_hold(w, 200);
    size_t n;
    unsigned char *pcm = clip_pcm(0, &n);
    struct chan *c;
    ASSERT_OK(chan_create(&c, w, eng, NULL, NULL, render, NULL, 1 << 22, NULL, 0));
    struct workers_stats s0, s1;
    workers_stats(w, &s0);
    /* 1.2 s of audio in 20 ms frames at (at most) real-time pace */
    for (size_t off = 0; off + 640 <= 38400; off += 640) {
        ASSERT_OK(chan_post_audio(c, pcm + off, 640));
        sleep_ms(20);
    }
    wait_empty(c, 30000);
    ASSERT_EQ(chan_pending_bytes(c), 0);
    workers_stats(w, &s1);
    fprintf(stderr, "  60 frames ran as %llu jobs\n",
            (unsigned long long)(s1.jobs_done - s0.jobs_done));
    ASSERT_LE(s1.jobs_done - s0.jobs_done, 15);
    ASSERT(s1.jobs_done - s0.jobs_done >= 2);

    /* a frame is held for the hold's length, not decoded at once (a hold
     * longer than any decoding this test waits for, however loaded the
     * machine) */
    workers_set_hold(w, 60000);
    ASSERT_OK(chan_post_audio(c, pcm, 640));
    sleep_ms(100);
    ASSERT(chan_pending_bytes(c) > 0);
    /* a finalize ends the hold: the audio and the finalize run now */
    ASSERT_OK(chan_post_finalize(c));
    ASSERT_LE(wait_empty(c, 30000), 29000);
    /* so does audio past HOLD_MAX_BYTES (an upload refilling its budget) */
    ASSERT_OK(chan_post_audio(c, pcm, 640));
    sleep_ms(100);
    ASSERT(chan_pending_bytes(c) > 0);
    for (size_t off = 640; off < 17920; off += 640)
        ASSERT_OK(chan_post_audio(c, pcm + off, 640));
    ASSERT_LE(wait_empty(c, 30000), 29000);
    /* held when released and when the pool stops: freed, nothing leaks,
     * destroy does not wait for the hold */
    ASSERT_OK(chan_post_audio(c, pcm, 640));
    chan_release(c);
    struct chan *c2;
    ASSERT_OK(chan_create(&c2, w, eng, NULL, NULL, render, NULL, 1 << 22, NULL, 0));
    ASSERT_OK(chan_post_audio(c2, pcm, 640));
    int64_t t0 = clock_mono_ns();
    chan_release(c2);
    workers_destroy(w);
    ASSERT_LE((clock_mono_ns() - t0) / 1000000, 30000);
    free(pcm);
}

int main(void)
{
    char err[256];
    if (hark_engine_load(&eng, "pocketsphinx", NULL, err, sizeof err)) {
        fprintf(stderr, "engine: %s\n", err);
        return 1;
    }
    RUN_SHARED(test_concurrent_sessions);
    RUN_SHARED(test_limits_and_release);
    RUN_SHARED(test_live_before_bulk);
    RUN_SHARED(test_budget_counts_every_job);
    RUN_SHARED(test_multi_messages);
    RUN_SHARED(test_structured);
    RUN_SHARED(test_structured_turn);
    RUN_SHARED(test_hold);
    hark_engine_destroy(eng);
    CHECK_NO_LEAKS();
    return 0;
}
