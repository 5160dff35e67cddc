/*
 * OpenAI Realtime API, transcription sessions (/v1/realtime), the pure half:
 * client events -> what they ask (session updates in the GA shape
 * `session.update` {session:{type:"transcription",audio:{input:{...}}}} and
 * the beta `transcription_session.update`, base64 audio appends, commit,
 * clear), session events -> server events (docs/openai.md, Realtime). No
 * I/O; any thread.
 */
#ifndef HARK_FRONT_PROTO_OAIRT_H
#define HARK_FRONT_PROTO_OAIRT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "hark/hark.h"

enum oairt_format { OAIRT_PCM16, OAIRT_ULAW, OAIRT_ALAW };

/* A transcription session's settings, as the client set them. */
struct oairt_config {
    enum oairt_format format; /* pcm16 is 24 kHz mono */
    int vad;                  /* turn_detection server_vad (1) or null (0: commits) */
    int silence_ms;           /* server_vad silence_duration_ms -> endpointing_ms */
    int prefix_ms;            /* server_vad prefix_padding_ms (echoed only) */
    double threshold;         /* server_vad threshold (echoed only) */
    char model[64];           /* input transcription model (echoed) */
    char language[36];        /* "" = the server's default */
    char prompt[512];         /* echoed; not used by the engine */
};

/* Defaults of a new session: pcm16, server_vad 0.5/300/500 ms. */
void oairt_config_init(struct oairt_config *c);
/* Session options for a config, over the server's defaults in o. 0 or an
 * error naming the OpenAI field. */
int oairt_options(const struct oairt_config *c, struct hark_options *o, char *err, size_t n);

enum oairt_type {
    OAIRT_UPDATE,  /* cfg holds the new settings (from the current ones) */
    OAIRT_APPEND,  /* audio holds the decoded bytes */
    OAIRT_COMMIT,  /* input_audio_buffer.commit */
    OAIRT_CLEAR,   /* input_audio_buffer.clear */
    OAIRT_INVALID, /* error: code, param, why say what (the session goes on) */
};

struct oairt_in {
    enum oairt_type type;
    int beta;          /* UPDATE: transcription_session.update (answer in kind) */
    char event_id[64]; /* the client's event_id ("" = none) */
    struct oairt_config cfg;
    char code[40];  /* INVALID: OpenAI's error code */
    char param[64]; /* INVALID: the field at fault ("" = none) */
    char why[300];
};

/*
 * Parses one client text message; cur: the session's settings now. An
 * append's audio is decoded (base64) into audio (reset first). Any input
 * gives a type; nothing is allocated but audio's bytes.
 */
void oairt_parse(const char *msg, size_t len, const struct oairt_config *cur, struct oairt_in *in,
                 struct buf *audio);

/* Server events rendered on the I/O thread. event_id: the server's id for
 * this event. beta: the beta shape (transcription_session.*). */
void oairt_render_session(struct buf *b, const char *type, const char *event_id,
                          const char *session_id, const struct oairt_config *c, int beta);
/* {"type":"error","event_id":..,"error":{"type","code","message","param","event_id"}} */
void oairt_render_error(struct buf *b, const char *event_id, const char *type, const char *code,
                        const char *message, const char *param, const char *client_event_id);
void oairt_render_cleared(struct buf *b, const char *event_id);

/* The render state of a session (immutable once it started). */
struct oairt_render {
    char session_id[48]; /* "sess_..."; item ids are "item_<id>_<segment>" */
    int vad;
};

/*
 * One session event into server events: several NUL-ended messages with
 * *flags |= MSG_MULTI (a final is speech_stopped, committed, delta and
 * completed), or none. Undecodable audio: an error event and MSG_FATAL.
 */
void oairt_render_event(const struct oairt_render *r, const struct hark_event *ev, struct buf *out,
                        unsigned *flags);

#endif
