#include "client/client_msg.h"

#include <math.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"

/* The wire names (docs/protocol.md), here rather than through
 * hark_event_type_name so that this parser stands alone (fuzz target). */
static const struct {
    const char *name;
    enum hark_event_type type;
} events[] = {
    {"transcript", HARK_EVENT_TRANSCRIPT},
    {"speech_started", HARK_EVENT_SPEECH_STARTED},
    {"utterance_end", HARK_EVENT_UTTERANCE_END},
    {"interrupt", HARK_EVENT_INTERRUPT},
    {"error", HARK_EVENT_ERROR},
    {"closed", HARK_EVENT_CLOSED},
    {"provider_failover", HARK_EVENT_PROVIDER_FAILOVER},
    {"audio_gap", HARK_EVENT_AUDIO_GAP},
};
static const struct {
    const char *name;
    enum hark_reason reason;
} reasons[] = {
    {"endpoint", HARK_REASON_ENDPOINT},
    {"finalize", HARK_REASON_FINALIZE},
    {"max_length", HARK_REASON_MAX_LENGTH},
    {"close", HARK_REASON_CLOSE},
};

void client_msg_init(struct client_msg *m)
{
    memset(m, 0, sizeof *m);
}

static void clear(struct client_msg *m)
{
    json_free(m->doc);
    m->doc = NULL;
    struct hark_word *words = m->words;
    size_t cap = m->words_cap;
    memset(m, 0, sizeof *m);
    m->words = words;
    m->words_cap = cap;
    m->last_seq = -1;
    m->session_id = m->resume_token = m->encoding = m->type = "";
}

void client_msg_deinit(struct client_msg *m)
{
    json_free(m->doc);
    hark_free(m->words);
    memset(m, 0, sizeof *m);
}

int client_msg_err_from_code(const char *code)
{
#define XX(sym, num, wire, text)                                                                   \
    if (!strcmp(code, wire))                                                                       \
        return num;
    HARK_ERR_MAP(XX)
#undef XX
    return HARK_E_INTERNAL;
}

/* Integers the protocol counts with (seq, bytes, segments, ms): whole, not
 * negative, below 2^53 where doubles stop being exact. */
static int get_count(const struct json_value *obj, const char *key, int required, uint64_t *out,
                     char *err, size_t n)
{
    const struct json_value *v = json_get(obj, key);
    if (!v) {
        *out = 0;
        return required ? err_set(err, n, HARK_E_PROTOCOL, "\"%s\" missing", key) : 0;
    }
    double d = json_num(v);
    if (json_type(v) != JSON_NUMBER || d < 0 || d > 9007199254740992.0 || d != floor(d))
        return err_set(err, n, HARK_E_PROTOCOL, "\"%s\" must be a whole number >= 0", key);
    *out = (uint64_t)d;
    return 0;
}

static int get_time(const struct json_value *obj, const char *key, double *out, char *err, size_t n)
{
    const struct json_value *v = json_get(obj, key);
    *out = 0;
    if (!v)
        return 0;
    if (json_type(v) != JSON_NUMBER)
        return err_set(err, n, HARK_E_PROTOCOL, "\"%s\" must be a number", key);
    *out = json_num(v);
    return 0;
}

static const char *get_str(const struct json_value *obj, const char *key)
{
    const char *s = json_str(json_get(obj, key));
    return s ? s : "";
}

static int get_bool(const struct json_value *obj, const char *key)
{
    return json_bool(json_get(obj, key));
}

static int parse_words(struct client_msg *m, const struct json_value *arr, char *err, size_t n)
{
    if (json_type(arr) != JSON_ARRAY)
        return err_set(err, n, HARK_E_PROTOCOL, "\"words\" must be an array");
    size_t count = json_len(arr);
    /* at least one element: "words":[] is a non-NULL array of 0, as the
     * library gives, unlike no words at all (NULL) */
    if (mem_grow(&m->words, &m->words_cap, count ? count : 1, sizeof *m->words))
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const struct json_value *w = json_at(arr, i);
        const char *word = json_str(json_get(w, "word"));
        if (json_type(w) != JSON_OBJECT || !word)
            return err_set(err, n, HARK_E_PROTOCOL, "words[%zu] has no \"word\"", i);
        double conf;
        int rc = get_time(w, "start", &m->words[i].start, err, n);
        if (!rc)
            rc = get_time(w, "end", &m->words[i].end, err, n);
        if (!rc)
            rc = get_time(w, "confidence", &conf, err, n);
        if (rc)
            return rc;
        m->words[i].word = word;
        m->words[i].confidence = (float)conf;
    }
    m->ev.words = m->words;
    m->ev.n_words = count;
    return 0;
}

static int parse_event(struct client_msg *m, const struct json_value *root, char *err, size_t n)
{
    struct hark_event *ev = &m->ev;
    uint64_t u;
    int rc = get_count(root, "seq", 1, &ev->seq, err, n);
    if (rc)
        return rc;
    ev->speaker_id = get_str(root, "speaker_id");
    ev->session_id = "";
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT: {
        const char *text = json_str(json_get(root, "text"));
        if (!text)
            return err_set(err, n, HARK_E_PROTOCOL, "transcript without \"text\"");
        const struct json_value *fin = json_get(root, "is_final");
        if (json_type(fin) != JSON_BOOL)
            return err_set(err, n, HARK_E_PROTOCOL, "\"is_final\" must be true or false");
        if ((rc = get_count(root, "segment", 1, &u, err, n)))
            return rc;
        ev->segment = (int64_t)u;
        ev->text = text;
        ev->is_final = json_bool(fin);
        ev->speech_final = get_bool(root, "speech_final");
        ev->voice_activity = get_bool(root, "voice_activity");
        ev->language = get_str(root, "language");
        const char *reason = get_str(root, "reason");
        for (size_t r = 0; r < sizeof reasons / sizeof reasons[0]; r++)
            if (!strcmp(reason, reasons[r].name))
                ev->reason = reasons[r].reason;
        double conf;
        if ((rc = get_time(root, "start", &ev->start, err, n)) ||
            (rc = get_time(root, "end", &ev->end, err, n)) ||
            (rc = get_time(root, "confidence", &conf, err, n)))
            return rc;
        ev->confidence = (float)conf;
        if ((rc = get_count(root, "committed_ms", 0, &u, err, n)))
            return rc;
        ev->committed_ms = (int64_t)u;
        if (json_get(root, "words") && (rc = parse_words(m, json_get(root, "words"), err, n)))
            return rc;
        return 0;
    }
    case HARK_EVENT_SPEECH_STARTED:
    case HARK_EVENT_INTERRUPT:
        return get_time(root, "timestamp", &ev->start, err, n);
    case HARK_EVENT_UTTERANCE_END:
        return get_time(root, "last_word_end", &ev->end, err, n);
    case HARK_EVENT_ERROR:
        m->error_code = get_str(root, "code");
        ev->code = client_msg_err_from_code(m->error_code);
        ev->message = get_str(root, "message");
        return 0;
    case HARK_EVENT_CLOSED:
        if ((rc = get_time(root, "audio_seconds", &ev->audio_seconds, err, n)) ||
            (rc = get_count(root, "segments", 0, &u, err, n)))
            return rc;
        ev->segments = (int64_t)u;
        return 0;
    case HARK_EVENT_PROVIDER_FAILOVER:
        m->error_code = get_str(root, "code");
        ev->code = client_msg_err_from_code(m->error_code);
        ev->message = get_str(root, "message");
        ev->failover_reason = get_str(root, "reason");
        ev->from_engine = get_str(root, "from");
        ev->to_engine = get_str(root, "to");
        return get_time(root, "start", &ev->start, err, n);
    case HARK_EVENT_AUDIO_GAP:
        ev->message = get_str(root, "message");
        if ((rc = get_time(root, "start", &ev->start, err, n)))
            return rc;
        return get_time(root, "duration", &ev->duration, err, n);
    }
    return 0;
}

static int parse(struct client_msg *m, const struct json_value *root, char *err, size_t n)
{
    if (json_type(root) != JSON_OBJECT)
        return err_set(err, n, HARK_E_PROTOCOL, "message must be a JSON object");
    const char *type = json_str(json_get(root, "type"));
    if (!type)
        return err_set(err, n, HARK_E_PROTOCOL, "message has no \"type\"");
    m->type = type;
    uint64_t u = 0; /* get_count sets it on success; GCC 12 -O3 cannot tell */
    int rc;
    if (!strcmp(type, "ready") || !strcmp(type, "resumed")) {
        m->session_id = get_str(root, "session_id");
        if (!m->session_id[0])
            return err_set(err, n, HARK_E_PROTOCOL, "%s without \"session_id\"", type);
        m->resume_token = get_str(root, "resume_token");
        if ((rc = get_time(root, "resume_window", &m->resume_window, err, n)))
            return rc;
        if (type[1] == 'e' && type[2] == 'a') { /* ready */
            m->encoding = get_str(root, "encoding");
            if ((rc = get_count(root, "sample_rate", 0, &u, err, n)))
                return rc;
            m->sample_rate = u > 1000000 ? 0 : (int)u;
            if ((rc = get_count(root, "channels", 0, &u, err, n)))
                return rc;
            m->channels = u > 64 ? 0 : (int)u;
            m->kind = CLIENT_MSG_READY;
            return 0;
        }
        if ((rc = get_count(root, "audio_bytes", 1, &m->audio_bytes, err, n)))
            return rc;
        const struct json_value *k = json_get(root, "last_seq");
        if (json_type(k) == JSON_NUMBER && json_num(k) == -1) {
            m->last_seq = -1;
        } else {
            if ((rc = get_count(root, "last_seq", 1, &u, err, n)))
                return rc;
            m->last_seq = (int64_t)u;
        }
        m->kind = CLIENT_MSG_RESUMED;
        return 0;
    }
    if (!strcmp(type, "ack")) {
        if ((rc = get_count(root, "audio_bytes", 1, &m->audio_bytes, err, n)))
            return rc;
        m->kind = CLIENT_MSG_ACK;
        return 0;
    }
    for (size_t t = 0; t < sizeof events / sizeof events[0]; t++) {
        if (!strcmp(type, events[t].name)) {
            m->ev.type = events[t].type;
            if ((rc = parse_event(m, root, err, n)))
                return rc;
            m->kind = CLIENT_MSG_EVENT;
            return 0;
        }
    }
    return 0; /* unknown type: a newer server; ignored */
}

int client_msg_parse(struct client_msg *m, const char *text, size_t len, char *errbuf,
                     size_t errbuf_size)
{
    clear(m);
    int rc = json_parse(&m->doc, text, len, errbuf, errbuf_size);
    if (!rc)
        rc = parse(m, json_root(m->doc), errbuf, errbuf_size);
    if (rc)
        clear(m);
    return rc;
}
