#include "audio/opusdec.h"

#include <opus/opus.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

struct opusdec {
    OpusDecoder *dec;
    int rate;
    int channels;     /* as the header declares (output is always mono) */
    size_t skip_left; /* pre-skip samples at out_rate still to drop */
};

int opusdec_create(struct opusdec **out, const uint8_t *h, size_t len, int out_rate, char *err,
                   size_t errn)
{
    *out = NULL;
    if (len < 19 || memcmp(h, "OpusHead", 8) != 0)
        return err_set(err, errn, HARK_E_BAD_AUDIO, "Opus stream without a valid OpusHead header");
    if ((h[8] & 0xf0) != 0)
        return err_set(err, errn, HARK_E_UNSUPPORTED, "OpusHead version %d is not supported", h[8]);
    int channels = h[9], family = h[18];
    unsigned pre_skip = (unsigned)h[10] | (unsigned)h[11] << 8;
    int16_t gain_q8 = (int16_t)((uint16_t)h[16] | (uint16_t)h[17] << 8);
    if (channels < 1)
        return err_set(err, errn, HARK_E_BAD_AUDIO, "OpusHead declares 0 channels");
    /* Family 0 is mono/stereo in one stream: libopus mixes it to mono.
     * Surround (family 1+) needs a multistream decoder and a downmix. */
    if (family != 0 || channels > 2)
        return err_set(err, errn, HARK_E_UNSUPPORTED,
                       "Opus with %d channels (mapping family %d) is not supported; send mono "
                       "or stereo Opus",
                       channels, family);
    struct opusdec *d = hark_calloc(1, sizeof *d);
    if (!d)
        return err_set(err, errn, HARK_E_NOMEM, "out of memory");
    int oerr = 0;
    d->dec = opus_decoder_create(out_rate, 1, &oerr);
    if (!d->dec) {
        hark_free(d);
        return err_set(err, errn, HARK_E_INTERNAL, "Opus decoder: %s", opus_strerror(oerr));
    }
    if (gain_q8)
        opus_decoder_ctl(d->dec, OPUS_SET_GAIN(gain_q8));
    d->rate = out_rate;
    d->channels = channels;
    d->skip_left = (size_t)pre_skip * (size_t)out_rate / 48000;
    *out = d;
    return 0;
}

void opusdec_destroy(struct opusdec *d)
{
    if (!d)
        return;
    opus_decoder_destroy(d->dec);
    hark_free(d);
}

size_t opusdec_max_samples(const struct opusdec *d)
{
    return (size_t)d->rate * 120 / 1000;
}

int opusdec_channels(const struct opusdec *d)
{
    return d->channels;
}

int opusdec_decode(struct opusdec *d, const uint8_t *pkt, size_t len, float *out, char *err,
                   size_t errn)
{
    if (len > INT32_MAX)
        return err_set(err, errn, HARK_E_BAD_AUDIO, "Opus packet too large");
    int n = opus_decode_float(d->dec, pkt, (opus_int32)len, out, (int)opusdec_max_samples(d), 0);
    if (n < 0)
        return err_set(err, errn, HARK_E_BAD_AUDIO, "corrupt Opus packet: %s", opus_strerror(n));
    size_t got = (size_t)n;
    if (d->skip_left) {
        size_t drop = d->skip_left < got ? d->skip_left : got;
        memmove(out, out + drop, (got - drop) * sizeof *out);
        d->skip_left -= drop;
        got -= drop;
    }
    return (int)got;
}
