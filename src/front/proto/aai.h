/*
 * AssemblyAI Universal-Streaming v3 (wss://streaming.assemblyai.com/v3/ws),
 * the pure half: query parameters -> session options, client text
 * messages -> what they ask, session events -> Begin / Turn / SpeechStarted
 * / Termination / Error messages (docs/assemblyai.md). No I/O; any thread.
 */
#ifndef HARK_FRONT_PROTO_AAI_H
#define HARK_FRONT_PROTO_AAI_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "hark/hark.h"

/* AssemblyAI's close codes (its docs' "Common session errors and closures"):
 * the Error message before such a close carries the same number. */
#define AAI_CLOSE_NORMAL 1000
#define AAI_CLOSE_AUTH 1008     /* Unauthorized Connection: ... */
#define AAI_CLOSE_SERVER 3005   /* Session Cancelled: An error occurred */
#define AAI_CLOSE_INVALID 3006  /* invalid parameter, message type or JSON */
#define AAI_CLOSE_RATE 3007     /* audio faster than it can be buffered */
#define AAI_CLOSE_EXPIRED 3008  /* Session Expired: maximum session duration */
#define AAI_CLOSE_TOO_MANY 3009 /* too many concurrent sessions */

/* What the query asked for beyond session options; the render state. */
struct aai_params {
    int format_turns;     /* end-of-turn Turns say turn_is_formatted (see aai.c) */
    char token[260];      /* the temporary-token query parameter ("" = none) */
    int64_t started_unix; /* wall clock at the start, s (Begin, Termination) */
    int64_t started_ms;   /* monotonic ms at the start (session_duration_seconds) */
    int max_session_s;    /* for Begin's expires_at (0 = AssemblyAI's 3 hours) */
};

/*
 * Applies the upgrade's query arguments ("key=value", decoded) to opts (the
 * server's defaults). sample_rate, encoding (pcm_s16le, pcm_mulaw,
 * ogg_opus), min_turn_silence (or the older
 * min_end_of_turn_silence_when_confident) and max_turn_silence ->
 * endpointing_ms, keyterms_prompt (a JSON array of strings) -> vocabulary,
 * format_turns, end_of_turn_confidence_threshold (0..1, checked), token;
 * everything else is accepted and ignored. 0, or HARK_E_BAD_OPTION /
 * HARK_E_UNSUPPORTED with a message naming the parameter.
 */
int aai_apply_args(const char *const *args, size_t n_args, struct hark_options *opts,
                   struct aai_params *p, char *err, size_t n);

/* A client text message. */
enum aai_msg_type {
    AAI_MSG_TERMINATE,      /* {"type":"Terminate"} */
    AAI_MSG_FORCE_ENDPOINT, /* {"type":"ForceEndpoint"} */
    AAI_MSG_KEEPALIVE,      /* {"type":"KeepAlive"} */
    AAI_MSG_UPDATE,         /* {"type":"UpdateConfiguration",...}: values valid */
    AAI_MSG_INVALID,        /* not JSON, not an object, unknown type, bad values:
                               why says what (AssemblyAI closes with 3006) */
};
enum aai_msg_type aai_parse_text(const char *msg, size_t len, char *why, size_t n);

/* {"type":"Begin","id":...,"expires_at":unix s} */
void aai_render_begin(struct buf *b, const char *session_id, const struct aai_params *p);
/* {"type":"Error","error_code":code,"error":msg} */
void aai_render_error(struct buf *b, int code, const char *msg);
/* The close code and text for a hark error (refusals, fatal errors). */
int aai_close_code(int hark_err);

/*
 * One session event into one wire message, or none (out left empty).
 * now_ms: the monotonic clock in ms (Termination's
 * session_duration_seconds). *flags |= MSG_FATAL for errors that end the
 * session (undecodable audio).
 */
void aai_render_event(const struct aai_params *p, const struct hark_event *ev, int64_t now_ms,
                      struct buf *out, unsigned *flags);

#endif
