/*
 * hark client — stream audio to a hark server over the native WebSocket
 * protocol (/v1/stream, docs/protocol.md) and get events back, through
 * network faults: the client reconnects with backoff, resumes the session
 * (the server replays what was lost, the client resends the audio the server
 * lacks), and when the server no longer has the session it opens a new one
 * and replays the audio since the last final, so no word is lost.
 *
 *   hark_client_config_init()  defaults
 *   hark_client_create()       validate, start the client's thread, connect
 *   hark_client_send_audio()   bytes of any size, buffered, sent in order
 *   hark_client_finalize()     end the current utterance now
 *   hark_client_set_state()    listening / responding (interrupts)
 *   hark_client_close()        send everything, wait for the last finals
 *   hark_client_destroy()
 *
 * Threading
 *   - Each client runs one service thread of its own (one libwebsockets
 *     context per client), started by hark_client_create and joined by
 *     hark_client_destroy. All network I/O and all timers run on it.
 *   - hark_client_send_audio, _finalize, _set_state, _state and _stats are
 *     thread-safe: any thread may call them at any time, concurrently.
 *     Calls from one thread keep their order on the wire.
 *   - The event callback runs on the service thread, one event at a time,
 *     in order. It must return quickly. It may call send_audio (with
 *     HARK_CLIENT_DROP_OLDEST), finalize and set_state; it must not call
 *     hark_client_close or hark_client_destroy (they wait for that thread).
 *   - hark_client_close and hark_client_destroy are called once, by the
 *     owner, from a thread that is not the service thread.
 *
 * Ownership
 *   - The config and the strings it points to are copied by create.
 *   - Everything an event points to (struct hark_event and its strings and
 *     words, session ids, messages) is borrowed: valid only during the
 *     callback.
 *
 * Audio buffer
 *   The client keeps the audio a reconnect may need in a fixed-size ring
 *   (buffer_bytes): the audio the server has not yet acknowledged, and for
 *   raw encodings everything after the last final's committed_ms, which a
 *   new session needs when the old one cannot be resumed. When the ring is
 *   full, HARK_CLIENT_DROP_OLDEST (live capture) drops the oldest audio and
 *   reports the span in a HARK_CLIENT_EVENT_AUDIO_LOST event as soon as it
 *   is certain to be lost: never silently; HARK_CLIENT_WAIT (files) makes
 *   send_audio wait for room instead.
 *
 * Events
 *   Session events (HARK_CLIENT_EVENT_SESSION) carry the same struct
 *   hark_event the local library delivers. Across reconnects the client
 *   makes them one stream: seq counts 0, 1, 2, ... with no duplicates and no
 *   gaps the server did not make; after a new session replaced a lost one,
 *   times are shifted by where it started (offset_ms) and segment numbers
 *   continue after the last final's, so the transcript reads as one. Only
 *   the last session's CLOSED is delivered, with totals over all sessions.
 *
 * Errors
 *   Functions return 0 or a negative enum hark_err. The server's errors
 *   come as session events of type HARK_EVENT_ERROR; the client's own (no
 *   connection, bad key, reconnecting given up) as HARK_CLIENT_EVENT_ERROR.
 */
#ifndef HARK_CLIENT_H
#define HARK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "hark/hark.h"

#ifdef __cplusplus
extern "C" {
#endif

/* connecting -> streaming <-> paused -> reconnecting -> finalizing -> closed:
 * paused = no audio sent for keepalive_ms (keepalives hold the session);
 * reconnecting may return to streaming, paused or finalizing. */
enum hark_client_state {
    HARK_CLIENT_CONNECTING = 0,
    HARK_CLIENT_STREAMING = 1,
    HARK_CLIENT_PAUSED = 2,
    HARK_CLIENT_RECONNECTING = 3,
    HARK_CLIENT_FINALIZING = 4, /* close() called: flushing, waiting for the last finals */
    HARK_CLIENT_CLOSED = 5,
};
const char *hark_client_state_name(enum hark_client_state s); /* "streaming", ... */

enum hark_client_when_full {
    HARK_CLIENT_DROP_OLDEST = 0, /* live audio: drop the oldest, report it */
    HARK_CLIENT_WAIT = 1,        /* files: send_audio waits for room */
};

struct hark_client_config {
    /* ws://HOST[:PORT][/PATH] or wss://...; without a path /v1/stream. */
    const char *url;
    const char *api_key; /* NULL: none; sent as "Authorization: Token KEY" */
    const char *ca_file; /* wss: PEM bundle to verify the server; NULL: system store */
    /* Session options for the config message as NULL-terminated name/value
     * pairs, named as in hark_options_set: { "encoding", "mulaw",
     * "sample_rate", "8000", NULL }. NULL: the server's defaults. */
    const char *const *options;
    size_t buffer_bytes; /* audio ring; default 4 MiB (131 s of 16 kHz s16le) */
    enum hark_client_when_full when_full;
    /* Liveness: a keepalive after keepalive_ms without audio; a connection
     * that receives nothing for 2 x keepalive_ms (+1 s) is taken as dead
     * (half-open) and replaced. Default 5000. */
    unsigned keepalive_ms;
    unsigned backoff_base_ms, backoff_cap_ms; /* full jitter; default 250, 10000 */
    /* The first connection: give up after this many failed attempts (a
     * HARK_CLIENT_EVENT_ERROR, then closed). 0 = keep trying. */
    unsigned connect_attempts;
    /* Later: give up after this long without a session. 0 = never. */
    unsigned give_up_ms;
};

/* Fills the defaults above (url NULL: must be set). */
void hark_client_config_init(struct hark_client_config *cfg);

enum hark_client_event_type {
    HARK_CLIENT_EVENT_SESSION = 1,      /* .event: partial/final, speech_started, ... */
    HARK_CLIENT_EVENT_READY = 2,        /* a new session is open: .session_id */
    HARK_CLIENT_EVENT_RESUMED = 3,      /* the session continues: .session_id, .resent_bytes */
    HARK_CLIENT_EVENT_STATE = 4,        /* .state, .prev_state */
    HARK_CLIENT_EVENT_RECONNECTING = 5, /* .attempt, .delay_ms, .message: why */
    /* The session could not be resumed; a new one continues it from .offset_ms:
     * .old_session_id, .session_id */
    HARK_CLIENT_EVENT_RESTARTED = 6,
    /* Audio that no session will hear: .from_ms, .to_ms in the stream's time
     * (-1 for encodings without a fixed byte rate) and .from_byte, .to_byte */
    HARK_CLIENT_EVENT_AUDIO_LOST = 7,
    HARK_CLIENT_EVENT_ERROR = 8, /* the client's own: .code, .message */
};
const char *hark_client_event_name(enum hark_client_event_type t); /* "restarted", ... */

struct hark_client_event {
    enum hark_client_event_type type;
    const struct hark_event *event; /* SESSION */
    enum hark_client_state state, prev_state;
    const char *session_id;     /* READY, RESUMED, RESTARTED: the current session */
    const char *old_session_id; /* RESTARTED */
    int64_t offset_ms;          /* RESTARTED */
    int64_t from_ms, to_ms;     /* AUDIO_LOST */
    uint64_t from_byte, to_byte;
    uint64_t resent_bytes; /* RESUMED: audio sent again */
    unsigned attempt;      /* RECONNECTING: 1, 2, ... since the last session */
    unsigned delay_ms;     /* RECONNECTING: wait before this attempt */
    int code;              /* ERROR: enum hark_err */
    const char *message;   /* ERROR, RECONNECTING */
};

typedef void (*hark_client_event_cb)(void *user, const struct hark_client_event *ev);

struct hark_client;

/* Checks the config (URL, options syntax), starts the thread and begins
 * connecting; returns at once. HARK_E_INVAL with a message in errbuf for a
 * bad URL or config. */
int hark_client_create(struct hark_client **out, const struct hark_client_config *cfg,
                       hark_client_event_cb cb, void *user, char *errbuf, size_t errbuf_size);

/* Queue audio (any size, split anywhere). Audio given while disconnected is
 * sent on reconnect. HARK_E_STATE after close or a fatal error. */
int hark_client_send_audio(struct hark_client *c, const void *bytes, size_t len);
/* End the current utterance after the audio queued so far. */
int hark_client_finalize(struct hark_client *c);
int hark_client_set_state(struct hark_client *c, enum hark_state state);

/* Sends the rest of the audio, asks the server to close, waits for the last
 * finals and CLOSED (through reconnects), then returns: 0, or the error that
 * ended the client (e.g. HARK_E_AUTH, HARK_E_IO when reconnecting gave up,
 * HARK_E_TIMEOUT when timeout_ms passed; 0 = no limit). */
int hark_client_close(struct hark_client *c, unsigned timeout_ms);

/* Stops the thread and frees. Accepts NULL. Without close, the session is
 * dropped (the server keeps it for its resume window, then ends it). */
void hark_client_destroy(struct hark_client *c);

enum hark_client_state hark_client_state(const struct hark_client *c);

struct hark_client_stats {
    unsigned connects;     /* WebSocket connections that opened */
    unsigned resumes;      /* sessions resumed */
    unsigned restarts;     /* new sessions after a failed resume */
    uint64_t bytes_sent;   /* audio bytes written, resends included */
    uint64_t bytes_resent; /* audio bytes written again after a reconnect */
    uint64_t bytes_lost;   /* audio bytes reported in AUDIO_LOST */
    uint64_t bytes_acked;  /* the server's last acknowledgement */
};
void hark_client_stats(const struct hark_client *c, struct hark_client_stats *out);

#ifdef __cplusplus
}
#endif
#endif
