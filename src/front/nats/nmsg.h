/*
 * The NATS message codec (seed 004's protocol, docs/nats.md): parses
 * untrusted msgpack from ai.voice.stream.{session_id} into a plain struct and
 * renders results, interrupts, errors and the closing notice as msgpack maps.
 * Only this file and natsw.c include <msgpack.h>.
 *
 * Untrusted input: msgpack-c allocates container counts up front without
 * checking them against the bytes that remain (a 5-byte message can ask for
 * gigabytes, c-apis.md §3), so every message is first walked by an
 * independent validator that bounds depth, object count and every length by
 * the bytes actually present; only then does msgpack-c unpack it.
 *
 * Pure functions, no global state: thread-safe.
 */
#ifndef HARK_FRONT_NATS_NMSG_H
#define HARK_FRONT_NATS_NMSG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "hark/hark.h"

/* Limits of the parser (a seed message has at most ~8 keys). */
#define NMSG_MAX_DEPTH 8
#define NMSG_MAX_OBJECTS 4096
#define NMSG_MAX_EXTRAS 24   /* every session option fits (`hark serve --backend` sends them all) */
#define NMSG_ID_MAX 64       /* session_id: at most 63 bytes */
#define NMSG_SPEAKER_MAX 128 /* speaker_id: at most 127 bytes */

enum nmsg_type {
    NMSG_START = 0,
    NMSG_CHUNK,
    NMSG_STATE_CHANGE,
    NMSG_END,
    /* hark's additions (docs/nats.md), used by `hark serve --backend`: */
    NMSG_FINALIZE,  /* end the current utterance now (a client's finalize) */
    NMSG_KEEPALIVE, /* no audio, but the session is alive (the idle timeout restarts) */
};

/* A key of a start message that is not one of the seed's: handed to the
 * session options by name (e.g. "encoding", "language", "endpointing_ms"). */
struct nmsg_extra {
    char name[32];
    char value[4096]; /* text form: strings as is, numbers, true/false,
                         arrays of strings joined with commas */
};

/* A parsed input message. Strings are NUL-terminated copies. `audio` points
 * either into the input buffer (raw `audio` bytes: valid as long as the input
 * is) or into `audio_owned` (decoded `audio_b64`); release with nmsg_free. */
struct nmsg_in {
    enum nmsg_type type;
    int has_session_id;
    char session_id[NMSG_ID_MAX];
    int has_sample_rate, has_channels;
    int64_t sample_rate, channels;
    int has_state;
    enum hark_state state;
    int has_speaker_id;
    char speaker_id[NMSG_SPEAKER_MAX];
    int has_timestamp;
    double timestamp;
    const uint8_t *audio;
    size_t audio_len;
    uint8_t *audio_owned;
    size_t n_extras;
    struct nmsg_extra *extras; /* start only; hark_malloc'd array */
};

/*
 * Parses one message. Returns 0, or HARK_E_PROTOCOL (malformed msgpack, not a
 * map, unknown type, missing or mistyped field, bad base64) / HARK_E_NOMEM
 * with a message in err that says what was wrong and what is accepted. On
 * error *out holds nothing that needs freeing (nmsg_free is still safe).
 */
int nmsg_parse(struct nmsg_in *out, const void *data, size_t len, char *err, size_t errlen);
void nmsg_free(struct nmsg_in *m);
const char *nmsg_type_name(enum nmsg_type t);

/* The validator alone (mpk_validate with the limits above): 0 when data is
 * exactly one msgpack object within them, else HARK_E_PROTOCOL with the
 * reason and byte offset. */
int nmsg_validate(const void *data, size_t len, char *err, size_t errlen);

/* Standard base64 (also the URL-safe alphabet; padding optional) into out,
 * which must hold 3 * ((n + 3) / 4) bytes. Returns the decoded length, or -1
 * with the offset of the first bad character in *bad_at. */
long nmsg_base64_decode(const char *in, size_t n, uint8_t *out, size_t *bad_at);

/* ---- rendering: each appends one msgpack map to out (check out->oom) ---- */

/* A transcription result: seed 004's nine keys plus hark's own. */
struct nmsg_result {
    const char *session_id;
    const char *speaker_id; /* NULL or "": nil on the wire */
    const char *transcript;
    uint64_t sequence;
    int is_final;
    double timestamp; /* wall clock, seconds since the epoch */
    int has_voice_activity;
    enum hark_state state;
    /* hark's extras */
    int64_t segment;
    double start, end;
    int speech_final;
    const char *reason;   /* finals: "endpoint", ...; NULL for partials */
    int64_t committed_ms; /* finals only (reason set): audio before it is in finals */
    float confidence;
    const struct hark_word *words; /* NULL: no "words" key */
    size_t n_words;
    /* s added to start, end, the words' times and committed_ms: a session
     * resumed after a JetStream hand-off (jsw.h) continues its clock */
    double time_offset;
    /* JetStream: the publishing worker's ownership epoch (natsw_feed); 0: no
     * "owner_epoch" key */
    uint64_t owner_epoch;
};

void nmsg_render_result(struct buf *out, const struct nmsg_result *r);
/* {session_id, type:"interrupt", timestamp, speaker_id, state:"listening",
 *  audio_time} */
void nmsg_render_interrupt(struct buf *out, const char *session_id, const char *speaker_id,
                           double timestamp, double audio_time);
/* {session_id, type:"error", code, message, timestamp, speaker_id} */
void nmsg_render_error(struct buf *out, const char *session_id, const char *speaker_id, int err,
                       const char *message, double timestamp);
/* {session_id, type:"closed", timestamp, speaker_id, audio_seconds, segments}:
 * the last message of a session. */
void nmsg_render_closed(struct buf *out, const char *session_id, const char *speaker_id,
                        double timestamp, double audio_seconds, int64_t segments);
/* {session_id, type: "warning", code: "audio_gap", message, timestamp,
 * speaker_id, gap_start, gap_duration, audio_offset}: chunk timestamps say
 * gap_duration s of audio starting at client time gap_start never arrived;
 * audio_offset is where it is missing in the session's audio (the results'
 * start/end scale). */
void nmsg_render_gap(struct buf *out, const char *session_id, const char *speaker_id,
                     const char *message, double timestamp, double gap_start, double gap_duration,
                     double audio_offset);

/* {session_id, type: "started", timestamp, speaker_id, worker}: a start
 * that asked for it ("ack": true) was accepted; worker names the worker
 * (pid@host). hark's addition, for `hark serve --backend`. */
void nmsg_render_started(struct buf *out, const char *session_id, const char *speaker_id,
                         double timestamp, const char *worker);

/* {session_id, type: "alive", timestamp, speaker_id, received_bytes,
 * queued_bytes}: the answer to a keepalive. received_bytes: audio the
 * session accepted; queued_bytes: work still queued for it (audio not yet
 * recognised, with its overhead). hark's addition, for `hark serve
 * --backend`, which paces its audio by the difference. */
void nmsg_render_alive(struct buf *out, const char *session_id, const char *speaker_id,
                       double timestamp, uint64_t received_bytes, uint64_t queued_bytes);

/* Only for a start with "events": true (hark's addition, for `hark serve
 * --backend`): {session_id, type: "speech_started", timestamp, speaker_id,
 * audio_time, segment}: the VAD heard speech begin at audio_time (seconds of
 * session audio) in the segment results will carry; {session_id, type:
 * "utterance_end", timestamp, speaker_id, last_word_end}: utterance_end_ms
 * passed without new words after last_word_end. */
void nmsg_render_speech_started(struct buf *out, const char *session_id, const char *speaker_id,
                                double timestamp, double audio_time, int64_t segment);
void nmsg_render_utterance_end(struct buf *out, const char *session_id, const char *speaker_id,
                               double timestamp, double last_word_end);
/* Also only with "events": true: {session_id, type: "provider_failover",
 * timestamp, speaker_id, reason, code, message, from, to, start}: the
 * session left its network engine for the fallback (docs/protocol.md's
 * event of that name; start + time_offset is where the fallback recognises
 * from). */
void nmsg_render_failover(struct buf *out, const char *session_id, const char *speaker_id,
                          double timestamp, const struct hark_event *ev, double time_offset);

const char *nmsg_state_name(enum hark_state s);
/* Wall clock seconds since the epoch, for the seed's timestamp fields. */
double nmsg_now(void);
/* 1 if id can be a session id: 1..NMSG_ID_MAX-1 bytes, one NATS subject
 * token (no separators, wildcards, spaces or control bytes). */
int nmsg_id_ok(const char *id);

#endif
