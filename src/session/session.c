/*
 * The public session: a state machine around one pipeline. Transport
 * agnostic; front ends (CLI, WebSocket, NATS) call these and render events.
 *
 *   STREAMING --finalize--> STREAMING      (final for the current utterance)
 *   STREAMING --close-----> CLOSED         (last finals, then CLOSED event)
 *
 * Not thread-safe per session (see hark.h); the engine is.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "session/stage.h"

enum sess_state { S_STREAMING, S_CLOSED };

struct hark_session {
    struct hark_options *opts;
    struct pipeline pl;
    enum sess_state state;
    int turn; /* enum hark_state */
    char id[64];
};

const char *hark_reason_name(enum hark_reason r)
{
    switch (r) {
    case HARK_REASON_ENDPOINT:
        return "endpoint";
    case HARK_REASON_FINALIZE:
        return "finalize";
    case HARK_REASON_MAX_LENGTH:
        return "max_length";
    case HARK_REASON_CLOSE:
        return "close";
    case HARK_REASON_NONE:
        break;
    }
    return "";
}

const char *hark_event_type_name(enum hark_event_type t)
{
    switch (t) {
    case HARK_EVENT_TRANSCRIPT:
        return "transcript";
    case HARK_EVENT_SPEECH_STARTED:
        return "speech_started";
    case HARK_EVENT_UTTERANCE_END:
        return "utterance_end";
    case HARK_EVENT_INTERRUPT:
        return "interrupt";
    case HARK_EVENT_ERROR:
        return "error";
    case HARK_EVENT_CLOSED:
        return "closed";
    case HARK_EVENT_PROVIDER_FAILOVER:
        return "provider_failover";
    case HARK_EVENT_AUDIO_GAP:
        return "audio_gap";
    }
    return "?";
}

/* Is value one of the comma-separated names in list (case-insensitive)?
 * With prefix_ok a language subtag also matches: "en" matches "en-US".
 * "" always matches: it means the engine's default. A list "*" takes any
 * name (a network engine passes it on to its provider, which decides). */
static int in_list(const char *list, const char *value, int prefix_ok)
{
    if (!value[0] || (list && !strcmp(list, "*")))
        return 1;
    size_t n = strlen(value);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if ((len == n && strncasecmp(p, value, n) == 0) ||
            (prefix_ok && n < len && p[n] == '-' && strncasecmp(p, value, n) == 0))
            return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static void make_id(char *out, size_t n)
{
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memset(r, 0, sizeof r);
    snprintf(out, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6],
             r[7]);
}

int hark_engine_check_options(const struct hark_engine *eng, const struct hark_options *o,
                              char *errbuf, size_t errbuf_size)
{
    if (eng->fallback && o->engine[0] && strcmp(o->engine, eng->fallback->ops->name) == 0)
        eng = eng->fallback; /* a session may ask for the local engine by name */
    else if (o->engine[0] && strcmp(o->engine, eng->ops->name) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_NO_ENGINE,
                       "engine: '%s' is not available here (this server runs '%s'%s%s%s)",
                       o->engine, eng->ops->name, eng->fallback ? " and '" : "",
                       eng->fallback ? eng->fallback->ops->name : "", eng->fallback ? "'" : "");
    /* A language or model the engine lacks must fail here, at configure
     * time, with one error, not at every utterance's stream_acquire. Both
     * use the same code and the same message shape. */
    const char *name = NULL, *value = NULL, *accepted = NULL;
    if (!in_list(eng->ops->languages, o->language, 1))
        name = "language", value = o->language, accepted = eng->ops->languages;
    else if (!in_list(eng->ops->models ? eng->ops->models : "", o->model, 0))
        name = "model", value = o->model, accepted = eng->ops->models;
    if (name)
        return err_set(errbuf, errbuf_size, HARK_E_UNSUPPORTED,
                       "%s: '%s' is not supported by engine %s (supported: %s%s)", name, value,
                       eng->ops->name, accepted && *accepted ? accepted : "",
                       name[0] == 'm' ? (accepted && *accepted ? ", or empty for the default"
                                                               : "only empty, the default")
                                      : "");
    return 0;
}

int hark_session_create(struct hark_session **out, struct hark_engine *eng,
                        const struct hark_options *opts, const char *session_id, hark_event_cb cb,
                        void *user, char *errbuf, size_t errbuf_size)
{
    *out = NULL;
    if (!eng)
        return err_set(errbuf, errbuf_size, HARK_E_INVAL, "no engine given");
    if (session_id && strlen(session_id) >= 64)
        return err_set(errbuf, errbuf_size, HARK_E_INVAL, "session id longer than 63 bytes");
    int rc;
    struct hark_session *s = hark_calloc(1, sizeof *s);
    if (!s)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    if (opts)
        rc = hark_options_copy(&s->opts, opts);
    else
        rc = hark_options_create(&s->opts);
    if (rc) {
        err_set(errbuf, errbuf_size, rc, "out of memory");
        goto fail;
    }
    if ((rc = hark_engine_check_options(eng, s->opts, errbuf, errbuf_size)))
        goto fail;
    if (session_id && *session_id)
        snprintf(s->id, sizeof s->id, "%s", session_id);
    else
        make_id(s->id, sizeof s->id);
    s->pl.opts = s->opts;
    s->pl.engine = eng;
    s->pl.session_id = s->id;
    s->pl.state = &s->turn;
    s->pl.cb = cb;
    s->pl.cb_user = user;
    rc = pipeline_init(&s->pl);
    if (rc) {
        err_set(errbuf, errbuf_size, rc, "could not build the pipeline: %s", hark_strerror(rc));
        goto fail;
    }
    LOG_DEBUG(s->id, "session created: %s", pipeline_describe(&s->pl));
    *out = s;
    return 0;
fail:
    hark_session_destroy(s);
    return rc;
}

int hark_session_feed(struct hark_session *s, const void *bytes, size_t len)
{
    if (!s || (!bytes && len))
        return HARK_E_INVAL;
    if (s->state != S_STREAMING) {
        snprintf(s->pl.errmsg, sizeof s->pl.errmsg, "session is closed; no more audio accepted");
        return HARK_E_STATE;
    }
    if (!len)
        return 0;
    return pipeline_write_bytes(&s->pl, bytes, len);
}

int hark_session_finalize(struct hark_session *s)
{
    if (!s)
        return HARK_E_INVAL;
    if (s->state != S_STREAMING)
        return HARK_E_STATE;
    return pipeline_flush(&s->pl, HARK_REASON_FINALIZE);
}

void hark_session_set_notify(struct hark_session *s, void (*notify)(void *user), void *user)
{
    s->pl.notify = notify;
    s->pl.notify_user = user;
}

int hark_session_poll(struct hark_session *s)
{
    if (!s)
        return HARK_E_INVAL;
    if (s->state != S_STREAMING)
        return 0; /* close waited for every result */
    return pipeline_poll(&s->pl);
}

int hark_session_set_state(struct hark_session *s, enum hark_state state)
{
    if (!s || (state != HARK_STATE_LISTENING && state != HARK_STATE_RESPONDING))
        return HARK_E_INVAL;
    s->turn = state;
    return 0;
}

enum hark_state hark_session_get_state(const struct hark_session *s)
{
    return (enum hark_state)s->turn;
}

int hark_session_report_error(struct hark_session *s, int code, const char *message)
{
    if (!s || code >= 0 || !message)
        return HARK_E_INVAL;
    if (s->state != S_STREAMING)
        return HARK_E_STATE;
    /* not delivered at once: a final awaited from a network engine comes
     * first (the error is about input after that utterance) */
    return pipeline_report_error(&s->pl, code, message);
}

int hark_session_close(struct hark_session *s)
{
    if (!s)
        return HARK_E_INVAL;
    if (s->state == S_CLOSED)
        return HARK_E_STATE;
    int rc = pipeline_flush(&s->pl, HARK_REASON_CLOSE);
    s->state = S_CLOSED;
    struct hark_event ev = {
        .type = HARK_EVENT_CLOSED,
        .audio_seconds = hark_session_audio_seconds(s),
        .segments = s->pl.segments_done,
    };
    pipeline_deliver(&s->pl, &ev);
    return rc;
}

void hark_session_destroy(struct hark_session *s)
{
    if (!s)
        return;
    if (s->pl.n_stages)
        pipeline_deinit(&s->pl);
    else
        buf_deinit(&s->pl.describe);
    hark_options_destroy(s->opts);
    hark_free(s);
}

const char *hark_session_id(const struct hark_session *s)
{
    return s->id;
}

const char *hark_session_errmsg(const struct hark_session *s)
{
    return s->pl.errmsg;
}

const char *hark_session_describe(const struct hark_session *s)
{
    return pipeline_describe((struct pipeline *)&s->pl);
}

double hark_session_audio_seconds(const struct hark_session *s)
{
    return s->pl.in_rate ? (double)s->pl.in_samples / s->pl.in_rate : 0.0;
}

unsigned hark_session_results_pending(const struct hark_session *s)
{
    return s ? s->pl.results_pending : 0;
}
