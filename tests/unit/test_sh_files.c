/* The sherpa engine's model-directory check (src/engines/sherpa/sh_files.c):
 * the three kinds of k2-fsa's streaming releases found by their file names,
 * int8 preferred (but a transducer's decoder in float), every missing file
 * named, ambiguous directories refused, overrides checked. Directories are
 * made under a temporary one with files of a few bytes (no weights). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "engines/sherpa/sh_files.h"
#include "hark/hark.h"

static char root[256];
static char errbuf[1024];
static int dir_no;

/* A new directory holding the given files (NULL-terminated). */
static const char *make_dir(const char *const *names)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/m%d", root, dir_no++);
    ASSERT_OK(mkdir(dir, 0755));
    for (int i = 0; names[i]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        FILE *f = fopen(p, "w");
        ASSERT(f);
        fputs("x\n", f);
        fclose(f);
    }
    return dir;
}

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void test_transducer_int8_but_float_decoder(void)
{
    const char *names[] = {"encoder-epoch-99-avg-1.onnx",
                           "encoder-epoch-99-avg-1.int8.onnx",
                           "decoder-epoch-99-avg-1.onnx",
                           "decoder-epoch-99-avg-1.int8.onnx",
                           "joiner-epoch-99-avg-1.onnx",
                           "joiner-epoch-99-avg-1.int8.onnx",
                           "tokens.txt",
                           "bpe.model",
                           NULL};
    const char *dir = make_dir(names);
    struct sh_files f;
    ASSERT_OK(sh_files_find(&f, dir, SH_KIND_AUTO, NULL, errbuf, sizeof errbuf));
    ASSERT_EQ(f.kind, SH_KIND_TRANSDUCER);
    ASSERT_STR_EQ(base(f.encoder), "encoder-epoch-99-avg-1.int8.onnx");
    ASSERT_STR_EQ(base(f.decoder), "decoder-epoch-99-avg-1.onnx");
    ASSERT_STR_EQ(base(f.joiner), "joiner-epoch-99-avg-1.int8.onnx");
    ASSERT_STR_EQ(base(f.tokens), "tokens.txt");
}

static void test_paraformer_and_ctc(void)
{
    const char *para[] = {"encoder.onnx",      "encoder.int8.onnx", "decoder.onnx",
                          "decoder.int8.onnx", "tokens.txt",        NULL};
    struct sh_files f;
    ASSERT_OK(sh_files_find(&f, make_dir(para), SH_KIND_AUTO, "", errbuf, sizeof errbuf));
    ASSERT_EQ(f.kind, SH_KIND_PARAFORMER);
    ASSERT_STR_EQ(base(f.encoder), "encoder.int8.onnx");
    ASSERT_STR_EQ(base(f.decoder), "decoder.int8.onnx");

    const char *ctc[] = {"ctc-epoch-20-avg-1-chunk-16-left-128.onnx", "tokens.txt", NULL};
    ASSERT_OK(sh_files_find(&f, make_dir(ctc), SH_KIND_AUTO, "", errbuf, sizeof errbuf));
    ASSERT_EQ(f.kind, SH_KIND_CTC);
    ASSERT_STR_EQ(base(f.ctc), "ctc-epoch-20-avg-1-chunk-16-left-128.onnx");

    const char *model[] = {"model.int8.onnx", "tokens.txt", NULL};
    ASSERT_OK(sh_files_find(&f, make_dir(model), SH_KIND_CTC, "", errbuf, sizeof errbuf));
    ASSERT_STR_EQ(base(f.ctc), "model.int8.onnx");
}

/* Each file a transducer needs, missing in turn: the error names it. */
static void test_each_missing_file_named(void)
{
    const char *all[] = {"encoder.onnx", "decoder.onnx", "joiner.onnx", "tokens.txt"};
    const char *want[] = {"encoder*.onnx missing", "decoder*.onnx missing", "joiner*.onnx missing",
                          "tokens.txt missing"};
    for (int skip = 0; skip < 4; skip++) {
        const char *names[5];
        int n = 0;
        for (int i = 0; i < 4; i++)
            if (i != skip)
                names[n++] = all[i];
        names[n] = NULL;
        struct sh_files f;
        ASSERT_EQ(sh_files_find(&f, make_dir(names), SH_KIND_TRANSDUCER, "", errbuf, sizeof errbuf),
                  HARK_E_MODEL);
        if (!strstr(errbuf, want[skip]))
            FAIL_("skip %d: '%s' lacks '%s'", skip, errbuf, want[skip]);
    }
    /* a paraformer without its decoder; a ctc model without tokens */
    const char *enc[] = {"encoder.onnx", "tokens.txt", NULL};
    struct sh_files f;
    ASSERT_EQ(sh_files_find(&f, make_dir(enc), SH_KIND_PARAFORMER, "", errbuf, sizeof errbuf),
              HARK_E_MODEL);
    ASSERT(strstr(errbuf, "decoder*.onnx missing"));
    const char *ctc[] = {"model.onnx", NULL};
    ASSERT_EQ(sh_files_find(&f, make_dir(ctc), SH_KIND_AUTO, "", errbuf, sizeof errbuf),
              HARK_E_MODEL);
    ASSERT(strstr(errbuf, "tokens.txt missing"));
}

static void test_dir_errors(void)
{
    struct sh_files f;
    ASSERT_EQ(sh_files_find(&f, "", SH_KIND_AUTO, "", errbuf, sizeof errbuf), HARK_E_MODEL);
    ASSERT(strstr(errbuf, "--sherpa-model"));
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope", root);
    ASSERT_EQ(sh_files_find(&f, missing, SH_KIND_AUTO, "", errbuf, sizeof errbuf), HARK_E_MODEL);
    ASSERT(strstr(errbuf, "nope") && strstr(errbuf, "No such file"));
    const char *none[] = {"README.md", "tokens.txt", NULL};
    ASSERT_EQ(sh_files_find(&f, make_dir(none), SH_KIND_AUTO, "", errbuf, sizeof errbuf),
              HARK_E_MODEL);
    ASSERT(strstr(errbuf, "no streaming model found"));
    /* two encoders of the same precision: ambiguous, both named */
    const char *two[] = {"encoder-chunk-16.onnx",
                         "encoder-chunk-32.onnx",
                         "decoder.onnx",
                         "joiner.onnx",
                         "tokens.txt",
                         NULL};
    ASSERT_EQ(sh_files_find(&f, make_dir(two), SH_KIND_AUTO, "", errbuf, sizeof errbuf),
              HARK_E_MODEL);
    ASSERT(strstr(errbuf, "encoder-chunk-16.onnx") && strstr(errbuf, "encoder-chunk-32.onnx"));
    ASSERT(strstr(errbuf, "--sherpa-files encoder=PATH"));
    /* an empty file is refused before sherpa-onnx sees it */
    char d[512];
    snprintf(d, sizeof d, "%s",
             make_dir((const char *[]){"decoder.onnx", "joiner.onnx", "tokens.txt", NULL}));
    char enc[600];
    snprintf(enc, sizeof enc, "%s/encoder.onnx", d);
    FILE *e = fopen(enc, "w");
    ASSERT(e);
    fclose(e);
    ASSERT_EQ(sh_files_find(&f, d, SH_KIND_AUTO, "", errbuf, sizeof errbuf), HARK_E_MODEL);
    ASSERT(strstr(errbuf, "empty file"));
}

static void test_overrides(void)
{
    const char *two[] = {"encoder-chunk-16.onnx",
                         "encoder-chunk-32.onnx",
                         "decoder.onnx",
                         "joiner.onnx",
                         "tokens.txt",
                         NULL};
    char dir[512], files[1200];
    snprintf(dir, sizeof dir, "%s", make_dir(two));
    snprintf(files, sizeof files, "encoder=%s/encoder-chunk-32.onnx", dir);
    struct sh_files f;
    ASSERT_OK(sh_files_find(&f, dir, SH_KIND_AUTO, files, errbuf, sizeof errbuf));
    ASSERT_STR_EQ(base(f.encoder), "encoder-chunk-32.onnx");
    ASSERT_STR_EQ(base(f.joiner), "joiner.onnx");
    snprintf(files, sizeof files, "encoder=%s/gone.onnx", dir);
    ASSERT_EQ(sh_files_find(&f, dir, SH_KIND_AUTO, files, errbuf, sizeof errbuf), HARK_E_MODEL);
    ASSERT(strstr(errbuf, "gone.onnx"));
    ASSERT_EQ(sh_files_find(&f, dir, SH_KIND_AUTO, "vocoder=/x", errbuf, sizeof errbuf),
              HARK_E_BAD_OPTION);
    ASSERT(strstr(errbuf, "unknown role 'vocoder'"));
    ASSERT_EQ(sh_files_find(&f, dir, SH_KIND_AUTO, "encoder", errbuf, sizeof errbuf),
              HARK_E_BAD_OPTION);
    ASSERT_EQ(sh_kind_parse("zipformer2-ctc"), SH_KIND_CTC);
    ASSERT_EQ(sh_kind_parse("whisper"), -1);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/hark-sh-files-XXXXXX");
    ASSERT(mkdtemp(root));
    RUN(test_transducer_int8_but_float_decoder);
    RUN(test_paraformer_and_ctc);
    RUN(test_each_missing_file_named);
    RUN(test_dir_errors);
    RUN(test_overrides);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : 1;
}
