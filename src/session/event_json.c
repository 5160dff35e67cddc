#include "session/event_json.h"

void event_json_words(struct buf *b, const struct hark_word *words, size_t n, unsigned flags)
{
    buf_json_key(b, "words");
    buf_putc(b, '[');
    for (size_t i = 0; words && i < n; i++) {
        const struct hark_word *w = &words[i];
        if (i)
            buf_putc(b, ',');
        buf_putc(b, '{');
        buf_json_key(b, "word");
        buf_json_str(b, w->word);
        buf_json_key(b, "start");
        buf_json_num(b, w->start);
        buf_json_key(b, "end");
        buf_json_num(b, w->end);
        buf_json_key(b, "confidence");
        buf_json_num(b, w->confidence);
        if (flags & EVENT_JSON_PUNCTUATED) {
            buf_json_key(b, "punctuated_word");
            buf_json_str(b, w->word);
        }
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
}

void event_json_render(const struct hark_event *ev, struct buf *b)
{
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, hark_event_type_name(ev->type));
    buf_json_key(b, "seq");
    buf_json_num(b, (double)ev->seq);
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT:
        buf_json_key(b, "segment");
        buf_json_num(b, (double)ev->segment);
        buf_json_key(b, "is_final");
        buf_puts(b, ev->is_final ? "true" : "false");
        buf_json_key(b, "speech_final");
        buf_puts(b, ev->speech_final ? "true" : "false");
        if (ev->is_final) {
            buf_json_key(b, "reason");
            buf_json_str(b, hark_reason_name(ev->reason));
        }
        buf_json_key(b, "text");
        buf_json_str(b, ev->text);
        buf_json_key(b, "start");
        buf_json_num(b, ev->start);
        buf_json_key(b, "end");
        buf_json_num(b, ev->end);
        buf_json_key(b, "confidence");
        buf_json_num(b, ev->confidence);
        buf_json_key(b, "language");
        buf_json_str(b, ev->language);
        buf_json_key(b, "voice_activity");
        buf_puts(b, ev->voice_activity ? "true" : "false");
        /* words off (words == NULL): the key is left out entirely */
        if (ev->words)
            event_json_words(b, ev->words, ev->n_words, 0);
        if (ev->is_final) {
            buf_json_key(b, "committed_ms");
            buf_json_num(b, (double)ev->committed_ms);
        }
        break;
    case HARK_EVENT_SPEECH_STARTED:
        buf_json_key(b, "timestamp");
        buf_json_num(b, ev->start);
        break;
    case HARK_EVENT_UTTERANCE_END:
        buf_json_key(b, "last_word_end");
        buf_json_num(b, ev->end);
        break;
    case HARK_EVENT_INTERRUPT:
        buf_json_key(b, "timestamp");
        buf_json_num(b, ev->start);
        break;
    case HARK_EVENT_ERROR:
        buf_json_key(b, "code");
        buf_json_str(b, hark_err_code(ev->code));
        buf_json_key(b, "message");
        buf_json_str(b, ev->message);
        break;
    case HARK_EVENT_PROVIDER_FAILOVER:
        buf_json_key(b, "reason");
        buf_json_str(b, ev->failover_reason ? ev->failover_reason : "");
        buf_json_key(b, "code");
        buf_json_str(b, hark_err_code(ev->code));
        buf_json_key(b, "message");
        buf_json_str(b, ev->message ? ev->message : "");
        buf_json_key(b, "from");
        buf_json_str(b, ev->from_engine ? ev->from_engine : "");
        buf_json_key(b, "to");
        buf_json_str(b, ev->to_engine ? ev->to_engine : "");
        buf_json_key(b, "start");
        buf_json_num(b, ev->start);
        break;
    case HARK_EVENT_AUDIO_GAP:
        buf_json_key(b, "start");
        buf_json_num(b, ev->start);
        buf_json_key(b, "duration");
        buf_json_num(b, ev->duration);
        buf_json_key(b, "message");
        buf_json_str(b, ev->message ? ev->message : "");
        break;
    case HARK_EVENT_CLOSED:
        buf_json_key(b, "audio_seconds");
        buf_json_num(b, ev->audio_seconds);
        buf_json_key(b, "segments");
        buf_json_num(b, (double)ev->segments);
        break;
    }
    if (ev->speaker_id && ev->speaker_id[0]) {
        buf_json_key(b, "speaker_id");
        buf_json_str(b, ev->speaker_id);
    }
    buf_putc(b, '}');
}
