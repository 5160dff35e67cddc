/* Finding and checking a sherpa-onnx model directory (see sh_files.h). */
#include "engines/sherpa/sh_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"

enum role { R_ENCODER, R_DECODER, R_JOINER, R_CTC, N_ROLES };

static const char *const role_names[N_ROLES] = {"encoder", "decoder", "joiner", "ctc"};
#define MAX_CAND 8

struct cands {
    int n;
    char name[MAX_CAND][256];
};

static const char *const kind_names[] = {"auto", "transducer", "paraformer", "zipformer2-ctc"};

int sh_kind_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, kind_names[i]))
            return i;
    return -1;
}

const char *sh_kind_name(enum sh_kind k)
{
    return (unsigned)k < 4 ? kind_names[k] : "?";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int is_int8(const char *name)
{
    return ends_with(name, ".int8.onnx");
}

/* Which role a file name plays, or -1. */
static int role_of(const char *name)
{
    if (!ends_with(name, ".onnx"))
        return -1;
    for (int r = 0; r < N_ROLES; r++)
        if (!strncmp(name, role_names[r], strlen(role_names[r])))
            return r;
    if (!strncmp(name, "model", 5))
        return R_CTC;
    return -1;
}

static int check_file(const char *path, const char *role, char *errbuf, size_t errbuf_size)
{
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "sherpa %s file %s: %s", role, path,
                       strerror(errno));
    if (!S_ISREG(st.st_mode) || st.st_size == 0)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "sherpa %s file %s: %s", role, path,
                       S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
    return 0;
}

/* Picks one candidate: int8 preferred unless want_float, then float. */
static int pick(const struct cands *c, int want_float, const char *dir, const char *role, char *out,
                size_t out_size, char *errbuf, size_t errbuf_size)
{
    for (int pass = 0; pass < 2; pass++) {
        int int8_pass = want_float ? pass == 1 : pass == 0;
        int found = -1, count = 0;
        for (int i = 0; i < c->n; i++)
            if (is_int8(c->name[i]) == int8_pass) {
                if (found < 0)
                    found = i;
                count++;
            }
        if (count > 1) {
            char list[1024] = "";
            for (int i = 0; i < c->n; i++)
                if (is_int8(c->name[i]) == int8_pass)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                             *list ? ", " : "", c->name[i]);
            return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                           "sherpa model %s: several %s files (%s); name one with "
                           "--sherpa-files %s=PATH",
                           dir, role, list, role);
        }
        if (count == 1) {
            snprintf(out, out_size, "%s/%s", dir, c->name[found]);
            return 0;
        }
    }
    return err_set(errbuf, errbuf_size, HARK_E_MODEL, "sherpa model %s: no %s*.onnx", dir, role);
}

/* "role=path,role=path" into the fields it names. */
static int apply_files(struct sh_files *out, const char *files, char *errbuf, size_t errbuf_size)
{
    char copy[4 * SH_PATH_MAX];
    if (strlen(files) >= sizeof copy)
        return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION, "sherpa files: list too long");
    snprintf(copy, sizeof copy, "%s", files);
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item || !eq[1])
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "sherpa files: '%s' is not ROLE=PATH (roles: encoder, decoder, "
                           "joiner, ctc, tokens)",
                           item);
        *eq = '\0';
        char *dst = !strcmp(item, "encoder")   ? out->encoder
                    : !strcmp(item, "decoder") ? out->decoder
                    : !strcmp(item, "joiner")  ? out->joiner
                    : !strcmp(item, "ctc")     ? out->ctc
                    : !strcmp(item, "tokens")  ? out->tokens
                                               : NULL;
        if (!dst)
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "sherpa files: unknown role '%s' (roles: encoder, decoder, joiner, "
                           "ctc, tokens)",
                           item);
        if (strlen(eq + 1) >= SH_PATH_MAX)
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION, "sherpa files: %s path too long",
                           item);
        snprintf(dst, SH_PATH_MAX, "%s", eq + 1);
        int rc = check_file(dst, item, errbuf, errbuf_size);
        if (rc)
            return rc;
    }
    return 0;
}

int sh_files_find(struct sh_files *out, const char *dir, enum sh_kind kind, const char *files,
                  char *errbuf, size_t errbuf_size)
{
    memset(out, 0, sizeof *out);
    int rc = files && *files ? apply_files(out, files, errbuf, errbuf_size) : 0;
    if (rc)
        return rc;
    if (!dir || !*dir)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "engine sherpa needs a model directory (--sherpa-model DIR): a streaming "
                       "transducer, paraformer or zipformer2-ctc model from k2-fsa's releases");
    if (strlen(dir) > SH_PATH_MAX - 300)
        return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION, "sherpa model: path too long");
    DIR *d = opendir(dir);
    if (!d)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "sherpa model directory %s: %s", dir,
                       strerror(errno));
    struct cands c[N_ROLES];
    memset(c, 0, sizeof c);
    int has_tokens = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, "tokens.txt"))
            has_tokens = 1;
        int r = role_of(e->d_name);
        if (r < 0 || strlen(e->d_name) >= sizeof c[r].name[0] || c[r].n == MAX_CAND)
            continue;
        snprintf(c[r].name[c[r].n++], sizeof c[r].name[0], "%s", e->d_name);
    }
    closedir(d);
    /* The kind, from what is there (overrides count as present). */
    int have[N_ROLES];
    have[R_ENCODER] = c[R_ENCODER].n || out->encoder[0];
    have[R_DECODER] = c[R_DECODER].n || out->decoder[0];
    have[R_JOINER] = c[R_JOINER].n || out->joiner[0];
    have[R_CTC] = c[R_CTC].n || out->ctc[0];
    if (kind == SH_KIND_AUTO) {
        if (have[R_JOINER])
            kind = SH_KIND_TRANSDUCER;
        else if (have[R_ENCODER] && have[R_DECODER])
            kind = SH_KIND_PARAFORMER;
        else if (have[R_CTC])
            kind = SH_KIND_CTC;
        else
            return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                           "sherpa model %s: no streaming model found; expected encoder*.onnx, "
                           "decoder*.onnx and joiner*.onnx (transducer), encoder*.onnx and "
                           "decoder*.onnx (paraformer) or ctc*.onnx/model*.onnx "
                           "(zipformer2-ctc), with tokens.txt",
                           dir);
    }
    out->kind = kind;
    struct need {
        enum role r;
        char *dst;
        int want_float;
    } need[3];
    int n_need = 0;
    if (kind == SH_KIND_TRANSDUCER) {
        need[n_need++] = (struct need){R_ENCODER, out->encoder, 0};
        need[n_need++] = (struct need){R_DECODER, out->decoder, 1};
        need[n_need++] = (struct need){R_JOINER, out->joiner, 0};
    } else if (kind == SH_KIND_PARAFORMER) {
        need[n_need++] = (struct need){R_ENCODER, out->encoder, 0};
        need[n_need++] = (struct need){R_DECODER, out->decoder, 0};
    } else {
        need[n_need++] = (struct need){R_CTC, out->ctc, 0};
    }
    for (int i = 0; i < n_need; i++) {
        if (need[i].dst[0])
            continue; /* given and checked */
        rc = pick(&c[need[i].r], need[i].want_float, dir, role_names[need[i].r], need[i].dst,
                  SH_PATH_MAX, errbuf, errbuf_size);
        if (rc == HARK_E_MODEL && !c[need[i].r].n)
            return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                           "sherpa model %s: %s*.onnx missing (a %s model needs %s)", dir,
                           role_names[need[i].r], sh_kind_name(kind),
                           kind == SH_KIND_TRANSDUCER   ? "encoder, decoder, joiner and tokens.txt"
                           : kind == SH_KIND_PARAFORMER ? "encoder, decoder and tokens.txt"
                                                        : "ctc (or model) and tokens.txt");
        if (rc)
            return rc;
        if ((rc = check_file(need[i].dst, role_names[need[i].r], errbuf, errbuf_size)))
            return rc;
    }
    if (!out->tokens[0]) {
        if (!has_tokens)
            return err_set(errbuf, errbuf_size, HARK_E_MODEL, "sherpa model %s: tokens.txt missing",
                           dir);
        snprintf(out->tokens, SH_PATH_MAX, "%s/tokens.txt", dir);
        if ((rc = check_file(out->tokens, "tokens", errbuf, errbuf_size)))
            return rc;
    }
    return 0;
}
