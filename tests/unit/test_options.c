/* Session options: defaults, parsing, ranges, error messages, vocabulary. */
#include "check.h"
#include "hark/hark.h"
#include "session/options.h"

static void test_defaults(void)
{
    struct hark_options *o;
    char v[64];
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(hark_options_get(o, "encoding", v, sizeof v));
    ASSERT_STR_EQ(v, "pcm_s16le");
    ASSERT_OK(hark_options_get(o, "sample_rate", v, sizeof v));
    ASSERT_STR_EQ(v, "16000");
    ASSERT_OK(hark_options_get(o, "endpointing_ms", v, sizeof v));
    ASSERT_STR_EQ(v, "500");
    ASSERT_OK(hark_options_get(o, "interim_results", v, sizeof v));
    ASSERT_STR_EQ(v, "true");
    ASSERT_EQ(hark_options_get(o, "nope", v, sizeof v), HARK_E_BAD_OPTION);
    hark_options_destroy(o);
}

static void test_set_and_errors(void)
{
    struct hark_options *o;
    char err[256], v[64];
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(hark_options_set(o, "encoding", "MULAW", err, sizeof err));
    ASSERT_OK(hark_options_get(o, "encoding", v, sizeof v));
    ASSERT_STR_EQ(v, "mulaw");
    ASSERT_EQ(hark_options_set(o, "encoding", "mp3", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT(strstr(err, "mp3") && strstr(err, "pcm_s16le") && strstr(err, "wav"));
    ASSERT_EQ(hark_options_set(o, "sample_rate", "96000", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT(strstr(err, "sample_rate") && strstr(err, "8000..48000"));
    ASSERT_EQ(hark_options_set(o, "sample_rate", "16k", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT_OK(hark_options_set(o, "interim_results", "FALSE", err, sizeof err));
    ASSERT_OK(hark_options_get(o, "interim_results", v, sizeof v));
    ASSERT_STR_EQ(v, "false");
    ASSERT_EQ(hark_options_set(o, "words", "maybe", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT_OK(hark_options_set(o, "endpointing_ms", "false", err, sizeof err));
    ASSERT_OK(hark_options_get(o, "endpointing_ms", v, sizeof v));
    ASSERT_STR_EQ(v, "false");
    ASSERT_OK(hark_options_set(o, "endpointing_ms", "300", err, sizeof err));
    ASSERT_EQ(hark_options_set(o, "endpointing_ms", "5", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT_EQ(hark_options_set(o, "utterance_end_ms", "100", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT_OK(hark_options_set(o, "utterance_end_ms", "1000", err, sizeof err));
    ASSERT_OK(hark_options_set(o, "utterance_end_ms", "0", err, sizeof err));
    ASSERT_EQ(hark_options_set(o, "vad_mode", "4", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT_EQ(hark_options_set(o, "bogus", "1", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT(strstr(err, "bogus") && strstr(err, "vad_mode"));
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ASSERT_EQ(hark_options_set(o, "vocabulary", big, err, sizeof err), HARK_E_BAD_OPTION);
    hark_options_destroy(o);
}

static void test_vocabulary_list(void)
{
    struct hark_options *o;
    char **list;
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(options_vocabulary_list(o, &list));
    ASSERT(list == NULL);
    ASSERT_OK(hark_options_set(o, "vocabulary", " dashwood , , john dashwood,zorbliq ", NULL, 0));
    ASSERT_OK(options_vocabulary_list(o, &list));
    ASSERT_STR_EQ(list[0], "dashwood");
    ASSERT_STR_EQ(list[1], "john dashwood");
    ASSERT_STR_EQ(list[2], "zorbliq");
    ASSERT(list[3] == NULL);
    hark_free(list);
    ASSERT_OK(hark_options_set(o, "vocabulary", " , ", NULL, 0));
    ASSERT_OK(options_vocabulary_list(o, &list));
    ASSERT(list == NULL);
    hark_options_destroy(o);
}

static void test_copy_and_table(void)
{
    struct hark_options *o, *c;
    char v[64];
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(hark_options_set(o, "speaker_id", "spk-1", NULL, 0));
    ASSERT_OK(hark_options_copy(&c, o));
    hark_options_destroy(o);
    ASSERT_OK(hark_options_get(c, "speaker_id", v, sizeof v));
    ASSERT_STR_EQ(v, "spk-1");
    hark_options_destroy(c);
    int n = 0;
    for (; hark_options_name(n); n++)
        ASSERT(hark_options_help(n) && hark_options_help(n)[0]);
    ASSERT_GE(n, 14);
}

/* vad and interrupt_detection: on by default, booleans, listed in the table */
static void test_vad_and_interrupt_switches(void)
{
    struct hark_options *o;
    char err[256], v[64];
    ASSERT_OK(hark_options_create(&o));
    ASSERT_EQ(o->vad, 1);
    ASSERT_EQ(o->interrupt_detection, 1);
    ASSERT_OK(hark_options_get(o, "vad", v, sizeof v));
    ASSERT_STR_EQ(v, "true");
    ASSERT_OK(hark_options_set(o, "vad", "false", err, sizeof err));
    ASSERT_OK(hark_options_set(o, "interrupt_detection", "0", err, sizeof err));
    ASSERT_EQ(o->vad, 0);
    ASSERT_EQ(o->interrupt_detection, 0);
    ASSERT_OK(hark_options_get(o, "interrupt_detection", v, sizeof v));
    ASSERT_STR_EQ(v, "false");
    ASSERT_EQ(hark_options_set(o, "vad", "sometimes", err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT(strstr(err, "vad") && strstr(err, "true or false"));
    int found = 0;
    for (int i = 0; hark_options_name(i); i++)
        found += !strcmp(hark_options_name(i), "vad") ||
                 !strcmp(hark_options_name(i), "interrupt_detection");
    ASSERT_EQ(found, 2);
    hark_options_destroy(o);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_set_and_errors);
    RUN(test_vocabulary_list);
    RUN(test_copy_and_table);
    RUN(test_vad_and_interrupt_switches);
    return 0;
}
