/* libFuzzer target for the Ogg Opus demuxer and the Opus decoder behind it
 * (the "auto" encoding: files, SDKs and browsers sending Ogg Opus). The
 * input is fed in two pieces split at a point taken from its first byte.
 * Whatever the bytes: no crash; the result is 0 or a typed error with a
 * message, and errors are sticky; the first packet is an OpusHead and none
 * exceeds OGG_MAX_PACKET; every packet after the head either decodes or is
 * a typed bad_audio error. */
#include <stdint.h>
#include <string.h>

#include "audio/ogg.h"
#include "audio/opusdec.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

struct st {
    size_t packets;
    struct opusdec *dec;
    float out[1920];
};

static int on_packet(void *user, const uint8_t *pkt, size_t len)
{
    struct st *s = user;
    char err[256] = "";
    CHECK(len <= OGG_MAX_PACKET);
    if (s->packets++ == 0) {
        CHECK(len >= 8 && !memcmp(pkt, "OpusHead", 8));
        int rc = opusdec_create(&s->dec, pkt, len, 16000, err, sizeof err);
        CHECK(rc == 0 || ((rc == HARK_E_BAD_AUDIO || rc == HARK_E_UNSUPPORTED) && err[0]));
        return rc ? 1 : 0;
    }
    CHECK(len > 0);
    int n = opusdec_decode(s->dec, pkt, len, s->out, err, sizeof err);
    CHECK(n == HARK_E_BAD_AUDIO || (n >= 0 && (size_t)n <= opusdec_max_samples(s->dec)));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st s = {0};
    struct ogg_demux *d;
    CHECK(ogg_demux_create(&d, on_packet, &s) == 0);
    size_t cut = size ? data[0] % (size + 1) : 0;
    char err[256] = "";
    int rc = ogg_demux_feed(d, data, cut, err, sizeof err);
    if (!rc)
        rc = ogg_demux_feed(d, data + cut, size - cut, err, sizeof err);
    if (rc < 0) {
        CHECK(rc == HARK_E_BAD_AUDIO || rc == HARK_E_UNSUPPORTED);
        CHECK(err[0]);
        char again[256] = "";
        CHECK(ogg_demux_feed(d, data, size, again, sizeof again) == rc);
    } else {
        CHECK(rc == 0 || rc == 1);
    }
    ogg_demux_destroy(d);
    opusdec_destroy(s.dec);
    return 0;
}
