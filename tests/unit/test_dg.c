/* Deepgram query parameters -> session options (src/front/proto/dg.c): the
 * argument strings are what lws hands over, already percent- and
 * plus-decoded, one "key=value" per query argument. */
#include "check.h"
#include "front/proto/dg.h"
#include "hark/hark.h"

static int apply(struct hark_options **o, struct dg_params *p, char *err, size_t n,
                 const char *const *args, size_t n_args)
{
    ASSERT_OK(hark_options_create(o));
    return dg_apply_args(args, n_args, *o, p, NULL, 0, err, n);
}

static void expect_opt(const struct hark_options *o, const char *name, const char *want)
{
    char v[4096];
    ASSERT_OK(hark_options_get(o, name, v, sizeof v));
    ASSERT_STR_EQ(v, want);
}

static void test_live_parameters(void)
{
    const char *args[] = {"model=nova-3",
                          "encoding=MULAW",
                          "sample_rate=8000",
                          "channels=2",
                          "interim_results=TRUE",
                          "vad_events=1",
                          "endpointing=300",
                          "utterance_end_ms=1000",
                          "punctuate=true",
                          "smart_format=true",
                          "extra[a]=b",
                          "totally_unknown=x",
                          "novalue"};
    struct hark_options *o;
    struct dg_params p;
    char err[256];
    ASSERT_OK(apply(&o, &p, err, sizeof err, args, sizeof args / sizeof args[0]));
    ASSERT_STR_EQ(p.model, "nova-3");
    ASSERT_STR_EQ(p.encoding, "MULAW");
    ASSERT_STR_EQ(p.language, "en-US"); /* the default, echoed */
    ASSERT_EQ(p.interim_results, 1);
    ASSERT_EQ(p.vad_events, 1);
    ASSERT_EQ(p.utterance_end_ms, 1000);
    expect_opt(o, "encoding", "mulaw");
    expect_opt(o, "sample_rate", "8000");
    expect_opt(o, "channels", "2");
    expect_opt(o, "interim_results", "true");
    expect_opt(o, "vad_events", "true");
    expect_opt(o, "endpointing_ms", "300");
    expect_opt(o, "utterance_end_ms", "1000");
    hark_options_destroy(o);
}

static void test_endpointing_false_and_container(void)
{
    const char *args[] = {"endpointing=False", "interim_results=false", "language=en-US"};
    struct hark_options *o;
    struct dg_params p;
    char err[256];
    ASSERT_OK(apply(&o, &p, err, sizeof err, args, 3));
    expect_opt(o, "endpointing_ms", "false");
    expect_opt(o, "interim_results", "false");
    expect_opt(o, "encoding", "auto"); /* no encoding: containerised, sniffed */
    ASSERT_STR_EQ(p.encoding, "");
    ASSERT_STR_EQ(p.language, "en-US");
    hark_options_destroy(o);
}

static void test_container_encodings(void)
{
    /* Ogg Opus named as an encoding: read like any container, no rate needed */
    const char *args[] = {"encoding=ogg-opus"};
    struct hark_options *o;
    struct dg_params p;
    char err[256];
    ASSERT_OK(apply(&o, &p, err, sizeof err, args, 1));
    expect_opt(o, "encoding", "auto");
    hark_options_destroy(o);
    const char *args2[] = {"encoding=Opus", "sample_rate=48000"};
    ASSERT_OK(apply(&o, &p, err, sizeof err, args2, 2));
    expect_opt(o, "encoding", "auto");
    hark_options_destroy(o);
}

static void test_vocabulary(void)
{
    /* keywords drop their intensifier; keyterm is taken whole (a literal
     * '+' arrives as %2B, decoded by lws to '+'); commas cannot split a term */
    const char *args[] = {"keywords=dashwood:2", "keywords=elinor", "keyterm=mister john",
                          "keyterm=c++",         "keyterm=a,b",     "keywords=:5",
                          "keyterm=10:30"};
    struct hark_options *o;
    struct dg_params p;
    char err[256];
    ASSERT_OK(apply(&o, &p, err, sizeof err, args, sizeof args / sizeof args[0]));
    expect_opt(o, "vocabulary", "dashwood,elinor,mister john,c++,a b,10:30");
    hark_options_destroy(o);
}

static void test_errors_name_the_parameter(void)
{
    static const struct {
        const char *arg[2];
        int rc;
        const char *starts;
    } cases[] = {
        {{"encoding=flac", "sample_rate=48000"}, HARK_E_UNSUPPORTED, "encoding: 'flac'"},
        {{"encoding=linear16", "channels=1"}, HARK_E_BAD_OPTION, "sample_rate: required"},
        {{"encoding=linear16", "sample_rate=96000"},
         HARK_E_BAD_OPTION,
         "sample_rate: 96000 is out of range (8000..48000)"},
        {{"interim_results=yes", "model=x"}, HARK_E_BAD_OPTION, "interim_results: 'yes'"},
        {{"vad_events=", "model=x"}, HARK_E_BAD_OPTION, "vad_events: ''"},
        {{"endpointing=soon", "model=x"}, HARK_E_BAD_OPTION, "endpointing: 'soon' is not"},
        {{"utterance_end_ms=5", "model=x"}, HARK_E_BAD_OPTION, "utterance_end_ms: 5 is out"},
        {{"channels=0", "model=x"}, HARK_E_BAD_OPTION, "channels: 0 is out of range"},
        {{"encoding=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "model=x"},
         HARK_E_UNSUPPORTED,
         "encoding: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hark_options *o;
        struct dg_params p;
        char err[256] = "";
        int rc = apply(&o, &p, err, sizeof err, cases[i].arg, 2);
        if (rc != cases[i].rc || strncmp(err, cases[i].starts, strlen(cases[i].starts)))
            FAIL_("case %zu: rc %d, err '%s'", i, rc, err);
        /* the parameter is named once ("sample_rate: sample_rate: ..." was
         * the option's own prefix after the parameter's) */
        const char *colon = strchr(err, ':');
        if (colon && !strncmp(colon + 2, err, (size_t)(colon - err + 1)))
            FAIL_("case %zu: parameter named twice: '%s'", i, err);
        hark_options_destroy(o);
    }
}

static void test_vocabulary_limit(void)
{
    /* more keyterms than the vocabulary holds: refused, not truncated */
    static char term[1000];
    memset(term, 'x', sizeof term - 1);
    memcpy(term, "keyterm=", 8);
    const char *args[] = {term, term, term, term, term};
    struct hark_options *o;
    struct dg_params p;
    char err[256];
    ASSERT_EQ(apply(&o, &p, err, sizeof err, args, 5), HARK_E_BAD_OPTION);
    ASSERT(!strncmp(err, "keyterm: more than", 18));
    hark_options_destroy(o);
}

static void test_model(void)
{
    /* a Deepgram model name: only echoed on an engine with its one model;
     * the session's model on an engine that takes any (a provider's); an
     * engine's name picks the engine either way */
    static const char *const engines[] = {"pocketsphinx", "deepgram", NULL};
    const char *nova[] = {"model=nova-2"}, *ps[] = {"model=pocketsphinx"};
    for (int any = 0; any < 2; any++) {
        struct hark_options *o;
        struct dg_params p;
        char err[256];
        ASSERT_OK(hark_options_create(&o));
        ASSERT_OK(dg_apply_args(nova, 1, o, &p, engines, any, err, sizeof err));
        ASSERT_STR_EQ(p.model, "nova-2");
        expect_opt(o, "model", any ? "nova-2" : "");
        expect_opt(o, "engine", "");
        hark_options_destroy(o);
        ASSERT_OK(hark_options_create(&o));
        ASSERT_OK(dg_apply_args(ps, 1, o, &p, engines, any, err, sizeof err));
        expect_opt(o, "model", "");
        expect_opt(o, "engine", "pocketsphinx");
        hark_options_destroy(o);
    }
}

int main(void)
{
    RUN(test_model);
    RUN(test_live_parameters);
    RUN(test_endpointing_false_and_container);
    RUN(test_container_encodings);
    RUN(test_vocabulary);
    RUN(test_errors_name_the_parameter);
    RUN(test_vocabulary_limit);
    return 0;
}
