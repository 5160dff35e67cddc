/*
 * Static checks of PocketSphinx model files (see ps_model.h for why).
 *
 * Layouts checked here, as the 5prealpha readers expect them:
 *   s3 binary (means, variances, transition_matrices, mixture_weights):
 *     "s3\n" then "name value" lines up to a line "endhdr", the int32 byte
 *     order marker 0x11223344, the payload, and a 4-byte checksum when the
 *     header says "chksum0 yes".
 *   binary mdef: "BMDF", version, description length + text, 10 int32
 *     counts, CI phone names, padding to 4, cd_tree[n_cd_tree] (8 bytes),
 *     phones[n_phone] (12 bytes), int32 sseq size, sseq (int16 each),
 *     sseq_len[n_sseq] when n_emit_state is 0.
 *   sendump: int32-length-prefixed strings up to a 0 length, int32 rows and
 *     columns, then n_feat * rows * columns bytes (memory-mapped by ptm_mgau,
 *     so a short file would fault during decoding, not at load).
 *   trie LM: "Trie Language Model", uint8 order, uint32 counts[order], the
 *     trie, then int32 k and k bytes of NUL-terminated unigram strings.
 */
#include "engines/pocketsphinx/ps_model.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <pocketsphinx.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

#define S3_MAGIC 0x11223344u
#define MAX_S3_HEADER 65536
#define MAX_SMALL_FILE (16 << 20)
#define TRIE_MAGIC "Trie Language Model"
#define LM_MAX_ORDER 5 /* sphinxbase reads the order into a fixed array */
#define MAX_WORD_BYTES 1024

/* ------------------------------------------------------------ files */

int ps_model_check_file(const char *path, const char *what, char *errbuf, size_t errbuf_size)
{
    struct stat st;
    if (!path || !*path)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s: no path given", what);
    if (stat(path, &st) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s': %s", what, path,
                       strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s' is not a regular file", what,
                       path);
    if (access(path, R_OK) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s' is not readable: %s", what, path,
                       strerror(errno));
    return 0;
}

static long long file_size(FILE *f)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return -1;
    return (long long)st.st_size;
}

/* Reads exactly n bytes at off; 0 or -1 when the file is shorter. */
static int read_at(FILE *f, long long off, void *buf, size_t n)
{
    if (fseeko(f, (off_t)off, SEEK_SET) != 0)
        return -1;
    return fread(buf, 1, n, f) == n ? 0 : -1;
}

static uint32_t get_u32(const unsigned char *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

static int32_t get_i32(const unsigned char *p, int swap)
{
    return (int32_t)get_u32(p, swap);
}

/* Whole file into a NUL-terminated buffer (small files only). */
static int slurp(const char *path, const char *what, char **out, size_t *len, char *errbuf,
                 size_t errbuf_size)
{
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s': %s", what, path,
                       strerror(errno));
    long long size = file_size(f);
    if (size < 0 || size > MAX_SMALL_FILE) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s' is larger than %d bytes", what,
                     path, MAX_SMALL_FILE);
        goto done;
    }
    buf = hark_malloc((size_t)size + 1);
    if (!buf) {
        rc = err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    if (size > 0 && read_at(f, 0, buf, (size_t)size) != 0) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s': read error", what, path);
        goto done;
    }
    buf[size] = '\0';
    *out = buf;
    *len = (size_t)size;
    buf = NULL;
done:
    hark_free(buf);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------ s3 binary */

struct s3_file {
    FILE *f;
    long long size;
    long long data_off; /* first byte after the byte-order marker */
    int swap;
    int chksum;
};

static int s3_open(const char *path, const char *what, struct s3_file *s, char *errbuf,
                   size_t errbuf_size)
{
    int rc = ps_model_check_file(path, what, errbuf, errbuf_size);
    char *hdr = NULL;
    memset(s, 0, sizeof *s);
    if (rc)
        return rc;
    s->f = fopen(path, "rb");
    if (!s->f)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s': %s", what, path,
                       strerror(errno));
    s->size = file_size(s->f);
    size_t n = s->size < MAX_S3_HEADER ? (size_t)s->size : MAX_S3_HEADER;
    hdr = hark_malloc(n + 1);
    if (!hdr) {
        rc = err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
        goto done;
    }
    if (read_at(s->f, 0, hdr, n) != 0 || n < 3 || memcmp(hdr, "s3\n", 3) != 0) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "%s '%s' is not a sphinx binary model file (expected an \"s3\" header)", what,
                     path);
        goto done;
    }
    hdr[n] = '\0';
    /* "name value" lines; the header ends at the line whose word is endhdr. */
    size_t pos = 3;
    long long end = -1;
    while (pos < n) {
        char *nl = memchr(hdr + pos, '\n', n - pos);
        if (!nl)
            break;
        *nl = '\0';
        char word[64], value[64];
        int k = sscanf(hdr + pos, "%63s %63s", word, value);
        if (k >= 1 && strcmp(word, "endhdr") == 0) {
            end = (long long)(nl - hdr) + 1;
            break;
        }
        if (k == 2 && strcmp(word, "chksum0") == 0 && strcmp(value, "yes") == 0)
            s->chksum = 1;
        pos = (size_t)(nl - hdr) + 1;
    }
    unsigned char magic[4];
    if (end < 0 || read_at(s->f, end, magic, 4) != 0) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "%s '%s': sphinx header has no \"endhdr\" line and byte-order marker", what,
                     path);
        goto done;
    }
    if (get_u32(magic, 0) == S3_MAGIC) {
        s->swap = 0;
    } else if (get_u32(magic, 1) == S3_MAGIC) {
        s->swap = 1;
    } else {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "%s '%s': bad byte-order marker after the header (expected 0x11223344)", what,
                     path);
        goto done;
    }
    s->data_off = end + 4;
done:
    hark_free(hdr);
    if (rc && s->f) {
        fclose(s->f);
        s->f = NULL;
    }
    return rc;
}

static void s3_close(struct s3_file *s)
{
    if (s->f)
        fclose(s->f);
    s->f = NULL;
}

static int truncated(const char *what, const char *path, long long have, long long need,
                     char *errbuf, size_t errbuf_size)
{
    return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                   "%s '%s' is truncated: %lld bytes, its header describes %lld", what, path, have,
                   need);
}

/* sphinxbase exit()s on a checksum mismatch ("chksum0 yes" files): the sum
 * runs over every 4-byte word from the byte-order marker to the checksum. */
static int s3_check_sum(struct s3_file *s, const char *what, const char *path, long long end,
                        char *errbuf, size_t errbuf_size)
{
    if (!s->chksum)
        return 0;
    unsigned char buf[65536];
    uint32_t sum = 0;
    for (long long off = s->data_off; off < end;) {
        size_t n = end - off < (long long)sizeof buf ? (size_t)(end - off) : sizeof buf;
        if (read_at(s->f, off, buf, n) != 0)
            return truncated(what, path, s->size, end + 4, errbuf, errbuf_size);
        for (size_t i = 0; i + 4 <= n; i += 4)
            sum = ((sum << 20) | (sum >> 12)) + get_u32(buf + i, s->swap);
        off += (long long)n;
    }
    unsigned char stored[4];
    if (read_at(s->f, end, stored, 4) != 0)
        return truncated(what, path, s->size, end + 4, errbuf, errbuf_size);
    if (get_u32(stored, s->swap) != sum)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "%s '%s' is corrupt: checksum %08x in the file, %08x computed", what, path,
                       (unsigned)get_u32(stored, s->swap), (unsigned)sum);
    return 0;
}

/* Gaussian densities (means, variances). */
struct gauden_dims {
    int n_mgau, n_feat, n_density;
    long long veclen_sum;
};

static int check_gauden(const char *path, const char *what, struct gauden_dims *d, char *errbuf,
                        size_t errbuf_size)
{
    struct s3_file s;
    int rc = s3_open(path, what, &s, errbuf, errbuf_size);
    if (rc)
        return rc;
    unsigned char b[16];
    long long off = s.data_off;
    if (read_at(s.f, off, b, 12) != 0) {
        rc = truncated(what, path, s.size, off + 12, errbuf, errbuf_size);
        goto done;
    }
    d->n_mgau = get_i32(b, s.swap);
    d->n_feat = get_i32(b + 4, s.swap);
    d->n_density = get_i32(b + 8, s.swap);
    off += 12;
    if (d->n_mgau < 1 || d->n_mgau > 1000000 || d->n_feat < 1 || d->n_feat > 16 ||
        d->n_density < 1 || d->n_density > 65536) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "%s '%s': implausible dimensions %d codebooks x %d streams x %d densities",
                     what, path, d->n_mgau, d->n_feat, d->n_density);
        goto done;
    }
    d->veclen_sum = 0;
    for (int i = 0; i < d->n_feat; i++, off += 4) {
        if (read_at(s.f, off, b, 4) != 0) {
            rc = truncated(what, path, s.size, off + 4, errbuf, errbuf_size);
            goto done;
        }
        int32_t v = get_i32(b, s.swap);
        if (v < 1 || v > 4096) {
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s': implausible vector length %d",
                         what, path, (int)v);
            goto done;
        }
        d->veclen_sum += v;
    }
    if (read_at(s.f, off, b, 4) != 0) {
        rc = truncated(what, path, s.size, off + 4, errbuf, errbuf_size);
        goto done;
    }
    long long blk = get_i32(b, s.swap);
    long long want = (long long)d->n_mgau * d->n_density * d->veclen_sum;
    off += 4;
    if (blk != want) {
        rc =
            err_set(errbuf, errbuf_size, HARK_E_MODEL,
                    "%s '%s': %lld values stored, the dimensions need %lld", what, path, blk, want);
        goto done;
    }
    long long need = off + 4 * blk + (s.chksum ? 4 : 0);
    if (s.size < need)
        rc = truncated(what, path, s.size, need, errbuf, errbuf_size);
    else
        rc = s3_check_sum(&s, what, path, off + 4 * blk, errbuf, errbuf_size);
done:
    s3_close(&s);
    return rc;
}

/* A 3-d float array (transition_matrices, mixture_weights). */
static int check_3d(const char *path, const char *what, int dims[3], char *errbuf,
                    size_t errbuf_size)
{
    struct s3_file s;
    int rc = s3_open(path, what, &s, errbuf, errbuf_size);
    if (rc)
        return rc;
    unsigned char b[16];
    if (read_at(s.f, s.data_off, b, 16) != 0) {
        rc = truncated(what, path, s.size, s.data_off + 16, errbuf, errbuf_size);
        goto done;
    }
    long long n = get_i32(b + 12, s.swap);
    long long prod = 1;
    for (int i = 0; i < 3; i++) {
        dims[i] = get_i32(b + 4 * i, s.swap);
        if (dims[i] < 1 || dims[i] > 1000000) {
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s': implausible dimension %d",
                         what, path, dims[i]);
            goto done;
        }
        prod *= dims[i];
    }
    if (n != prod) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "%s '%s': %lld values stored, dimensions %dx%dx%d need %lld", what, path, n,
                     dims[0], dims[1], dims[2], prod);
        goto done;
    }
    long long need = s.data_off + 16 + 4 * n + (s.chksum ? 4 : 0);
    if (s.size < need)
        rc = truncated(what, path, s.size, need, errbuf, errbuf_size);
    else
        rc = s3_check_sum(&s, what, path, s.data_off + 16 + 4 * n, errbuf, errbuf_size);
done:
    s3_close(&s);
    return rc;
}

/* ------------------------------------------------------------ mdef */

struct mdef_dims {
    int n_ciphone, n_phone, n_emit_state, n_ci_sen, n_sen, n_tmat, n_sseq;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int bad_mdef(const char *path, const char *why, char *errbuf, size_t errbuf_size)
{
    return err_set(errbuf, errbuf_size, HARK_E_MODEL, "model definition '%s' is invalid: %s", path,
                   why);
}

static int add_ciphone(struct ps_model_am *am, const char *name, size_t len)
{
    char *copy = hark_strndup(name, len);
    if (!copy)
        return HARK_E_NOMEM;
    am->ciphones[am->n_ciphone++] = copy;
    return 0;
}

static int check_mdef_binary(const char *path, const unsigned char *d, size_t size,
                             struct mdef_dims *m, struct ps_model_am *am, char *errbuf,
                             size_t errbuf_size)
{
    int swap = memcmp(d, "BMDF", 4) != 0;
    if (size < 12 + 40)
        return bad_mdef(path, "shorter than its header", errbuf, errbuf_size);
    int32_t version = get_i32(d + 4, swap), hdr_len = get_i32(d + 8, swap);
    if (version < 0 || version > 1)
        return bad_mdef(path, "unknown binary format version", errbuf, errbuf_size);
    if (hdr_len < 0 || (size_t)hdr_len > size - 52)
        return bad_mdef(path, "bad description length (file truncated?)", errbuf, errbuf_size);
    size_t pos = 12 + (size_t)hdr_len;
    int32_t v[10];
    for (int i = 0; i < 10; i++)
        v[i] = get_i32(d + pos + 4 * i, swap);
    pos += 40;
    m->n_ciphone = v[0];
    m->n_phone = v[1];
    m->n_emit_state = v[2];
    m->n_ci_sen = v[3];
    m->n_sen = v[4];
    m->n_tmat = v[5];
    m->n_sseq = v[6];
    int n_cd_tree = v[8];
    /* s3cipid_t is int8 and s3senid_t int16 in this version. */
    if (m->n_ciphone < 1 || m->n_ciphone > 127 || m->n_phone < m->n_ciphone ||
        m->n_emit_state < 0 || m->n_emit_state > 32 || m->n_ci_sen < 1 || m->n_sen < m->n_ci_sen ||
        m->n_sen > 32767 || m->n_tmat < 1 || m->n_sseq < 1 || n_cd_tree < 0)
        return bad_mdef(path, "implausible counts in the header", errbuf, errbuf_size);
    am->ciphones = hark_calloc((size_t)m->n_ciphone, sizeof *am->ciphones);
    if (!am->ciphones)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    size_t names = pos;
    for (int i = 0; i < m->n_ciphone; i++) {
        const unsigned char *nul = pos < size ? memchr(d + pos, '\0', size - pos) : NULL;
        size_t len = nul ? (size_t)(nul - (d + pos)) : 0;
        if (!nul || len == 0 || len > 32)
            return bad_mdef(path, "bad phone name table (file truncated?)", errbuf, errbuf_size);
        for (size_t k = 0; k < len; k++)
            if (!isgraph(d[pos + k]))
                return bad_mdef(path, "phone name with non-printable bytes", errbuf, errbuf_size);
        if (add_ciphone(am, (const char *)d + pos, len))
            return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
        pos += len + 1;
    }
    for (int i = 1; i < am->n_ciphone; i++)
        if (strcmp(am->ciphones[i - 1], am->ciphones[i]) >= 0)
            return bad_mdef(path, "phone names not sorted (lookups would fail)", errbuf,
                            errbuf_size);
    pos = names + ((pos - names + 3) & ~(size_t)3);
    size_t tree = pos;
    size_t phones = tree + (size_t)n_cd_tree * 8;
    size_t sseq_hdr = phones + (size_t)m->n_phone * 12;
    if (sseq_hdr + 4 > size)
        return bad_mdef(path, "file truncated before the senone sequences", errbuf, errbuf_size);
    int32_t sseq_size = get_i32(d + sseq_hdr, swap);
    if (sseq_size < m->n_sseq || (m->n_emit_state && sseq_size != m->n_sseq * m->n_emit_state))
        return bad_mdef(path, "senone sequence size does not match the header", errbuf,
                        errbuf_size);
    size_t sseq = sseq_hdr + 4;
    size_t end = sseq + (size_t)sseq_size * 2 + (m->n_emit_state ? 0 : (size_t)m->n_sseq);
    if (end > size)
        return bad_mdef(path, "file truncated (senone sequences incomplete)", errbuf, errbuf_size);
    /* Indices the decoder follows without checking. */
    for (int i = 0; i < m->n_phone; i++) {
        int32_t ssid = get_i32(d + phones + 12 * (size_t)i, swap);
        int32_t tmat = get_i32(d + phones + 12 * (size_t)i + 4, swap);
        if (ssid < 0 || ssid >= m->n_sseq || tmat < 0 || tmat >= m->n_tmat)
            return bad_mdef(path, "phone entry refers past the senone/tmat tables", errbuf,
                            errbuf_size);
    }
    for (int32_t i = 0; i < sseq_size; i++) {
        uint16_t sen;
        memcpy(&sen, d + sseq + 2 * (size_t)i, 2);
        if (swap)
            sen = __builtin_bswap16(sen);
        if (sen >= m->n_sen)
            return bad_mdef(path, "senone id out of range", errbuf, errbuf_size);
    }
    for (int i = 0; i < n_cd_tree; i++) {
        const unsigned char *node = d + tree + 8 * (size_t)i;
        uint16_t n_down;
        memcpy(&n_down, node + 2, 2);
        if (swap)
            n_down = __builtin_bswap16(n_down);
        int32_t down = get_i32(node + 4, swap);
        if (n_down > 0 ? (down < 0 || (long long)down + n_down > n_cd_tree)
                       : (down < -1 || down >= m->n_phone)) /* -1: no such triphone */
            return bad_mdef(path, "context tree refers out of range", errbuf, errbuf_size);
    }
    return 0;
}

/* Text mdef ("0.3" format): the header counts and one line per phone with
 * base lft rt pos attrib tmat states... N. */
static int check_mdef_text(const char *path, char *d, struct mdef_dims *m, struct ps_model_am *am,
                           char *errbuf, size_t errbuf_size)
{
    int n_base = -1, n_tri = -1, n_tied = -1, n_ci_tied = -1, n_tmat = -1, n_state_map = -1;
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(d, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tok[64];
        int nt = 0;
        char *s2 = NULL;
        for (char *t = strtok_r(line, " \t\r", &s2); t && nt < 64; t = strtok_r(NULL, " \t\r", &s2))
            tok[nt++] = t;
        if (nt == 0 || tok[0][0] == '#')
            continue;
        if (lines == 0 && n_base < 0 && nt == 1 && strcmp(tok[0], "0.3") == 0)
            continue;
        if (nt == 2 && isdigit((unsigned char)tok[0][0])) {
            int val = atoi(tok[0]);
            if (strcmp(tok[1], "n_base") == 0)
                n_base = val;
            else if (strcmp(tok[1], "n_tri") == 0)
                n_tri = val;
            else if (strcmp(tok[1], "n_state_map") == 0)
                n_state_map = val;
            else if (strcmp(tok[1], "n_tied_state") == 0)
                n_tied = val;
            else if (strcmp(tok[1], "n_tied_ci_state") == 0)
                n_ci_tied = val;
            else if (strcmp(tok[1], "n_tied_tmat") == 0)
                n_tmat = val;
            else
                return bad_mdef(path, "unknown header line", errbuf, errbuf_size);
            continue;
        }
        if (n_base < 1 || n_base > 127 || n_tri < 0 || n_tied < 1 || n_ci_tied < 1 || n_tmat < 1 ||
            n_state_map < 1)
            return bad_mdef(path, "text header incomplete (n_base, n_tri, n_state_map, ...)",
                            errbuf, errbuf_size);
        int n_emit = n_state_map / (n_base + n_tri) - 1;
        if (n_emit < 1 || nt != 7 + n_emit || strcmp(tok[nt - 1], "N") != 0)
            return bad_mdef(path, "phone line with the wrong number of fields", errbuf,
                            errbuf_size);
        for (int i = 6; i < nt - 1; i++)
            if (atoi(tok[i]) < 0 || atoi(tok[i]) >= n_tied)
                return bad_mdef(path, "senone id out of range", errbuf, errbuf_size);
        if (atoi(tok[5]) < 0 || atoi(tok[5]) >= n_tmat)
            return bad_mdef(path, "tmat id out of range", errbuf, errbuf_size);
        if (lines < n_base) {
            if (!am->ciphones) {
                am->ciphones = hark_calloc((size_t)n_base, sizeof *am->ciphones);
                if (!am->ciphones)
                    return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
            }
            if (add_ciphone(am, tok[0], strlen(tok[0])))
                return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
        }
        m->n_emit_state = n_emit;
        lines++;
    }
    if (n_base < 1 || lines != n_base + n_tri)
        return bad_mdef(path, "number of phone lines does not match n_base + n_tri", errbuf,
                        errbuf_size);
    m->n_ciphone = n_base;
    m->n_phone = n_base + n_tri;
    m->n_sen = n_tied;
    m->n_ci_sen = n_ci_tied;
    m->n_tmat = n_tmat;
    /* The text reader sorts CI phones itself. */
    qsort(am->ciphones, (size_t)am->n_ciphone, sizeof *am->ciphones, cmp_str);
    return 0;
}

static int check_mdef(const char *path, struct mdef_dims *m, struct ps_model_am *am, char *errbuf,
                      size_t errbuf_size)
{
    char *d = NULL;
    size_t size = 0;
    int rc = ps_model_check_file(path, "model definition", errbuf, errbuf_size);
    if (rc)
        return rc;
    rc = slurp(path, "model definition", &d, &size, errbuf, errbuf_size);
    if (rc)
        return rc;
    if (size >= 4 && (memcmp(d, "BMDF", 4) == 0 || memcmp(d, "FDMB", 4) == 0))
        rc = check_mdef_binary(path, (const unsigned char *)d, size, m, am, errbuf, errbuf_size);
    else if (size >= 4 && memcmp(d, "0.3", 3) == 0 && isspace((unsigned char)d[3]))
        rc = check_mdef_text(path, d, m, am, errbuf, errbuf_size);
    else
        rc = bad_mdef(path, "neither a binary (\"BMDF\") nor a text (\"0.3\") model definition",
                      errbuf, errbuf_size);
    if (!rc && !ps_model_am_has_phone(am, "SIL"))
        rc = bad_mdef(path, "no SIL phone", errbuf, errbuf_size);
    hark_free(d);
    return rc;
}

/* ------------------------------------------------------------ sendump */

static int check_sendump(const char *path, int n_feat, int n_sen, char *errbuf, size_t errbuf_size)
{
    const char *what = "senone dump";
    int rc = ps_model_check_file(path, what, errbuf, errbuf_size);
    if (rc)
        return rc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s '%s': %s", what, path,
                       strerror(errno));
    long long size = file_size(f), off = 0;
    unsigned char b[8];
    int swap = 0;
    char line[1000];
    /* ptm_mgau reads each string into a 1000-byte buffer. */
    for (int i = 0;; i++) {
        if (i > 10000 || read_at(f, off, b, 4) != 0) {
            rc = truncated(what, path, size, off + 4, errbuf, errbuf_size);
            goto done;
        }
        int32_t n = get_i32(b, swap);
        if (i == 0 && (n < 1 || n > 999)) {
            swap = 1;
            n = get_i32(b, swap);
        }
        off += 4;
        if (n == 0)
            break;
        if (n < 0 || n > 999) {
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                         "%s '%s': bad header string length %d at byte %lld", what, path, (int)n,
                         off - 4);
            goto done;
        }
        if (read_at(f, off, line, (size_t)n) != 0) {
            rc = truncated(what, path, size, off + n, errbuf, errbuf_size);
            goto done;
        }
        if (i == 0 && line[n - 1] != '\0') { /* only the first is checked by ptm_mgau */
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                         "%s '%s': header string not NUL-terminated", what, path);
            goto done;
        }
        off += n;
    }
    if (read_at(f, off, b, 8) != 0) {
        rc = truncated(what, path, size, off + 8, errbuf, errbuf_size);
        goto done;
    }
    int32_t rows = get_i32(b, swap), cols = get_i32(b + 4, swap);
    off += 8;
    if (rows < 1 || rows > 65536 || cols != n_sen) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "%s '%s': %d rows x %d columns, the model definition has %d senones", what,
                     path, (int)rows, (int)cols, n_sen);
        goto done;
    }
    long long need = off + (long long)n_feat * rows * cols;
    if (size < need)
        rc = truncated(what, path, size, need, errbuf, errbuf_size);
done:
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------ feat.params */

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s)
{
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    return (errno || end == s || *end) ? -1 : 0;
}

static int one_of(const char *v, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(v, *list) == 0)
            return 1;
    return 0;
}

/* "1s_c_d_dd" or "1s_c_d_dd,13": the names feat_init knows, with an optional
 * number of cepstra used. feat_init exit()s on anything else. */
static int feat_type_ok(const char *v)
{
    static const char *const names[] = {"1s_c_d_ld_dd", "1s_c_d_dd", "cep_dcep", "cep", NULL};
    if (strcmp(v, "s2_4x") == 0 || strcmp(v, "s3_1x39") == 0)
        return 1;
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(v, names[i], n) != 0)
            continue;
        if (v[n] == '\0')
            return 1;
        long k;
        return v[n] == ',' && parse_long(v + n + 1, &k) == 0 && k >= 1 && k <= 13;
    }
    return 0;
}

/* "0-12/13-25/26-38": streams split by '/', components "a" or "a-b" by ','. */
static int svspec_ok(const char *v)
{
    const char *p = v;
    if (!*p)
        return 0;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || a < 0)
            return 0;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || b < a)
                return 0;
            p = end;
        }
        if (*p == ',' || *p == '/')
            p++;
        else if (*p)
            return 0;
        if (!*p && (p[-1] == ',' || p[-1] == '/'))
            return 0;
    }
    return 1;
}

static int floats_ok(const char *v)
{
    const char *p = v;
    while (*p) {
        char *end;
        (void)strtod(p, &end);
        if (end == p)
            return 0;
        p = end;
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            return 0;
    }
    return p != v;
}

static int check_feat_value(const char *path, const char *name, const arg_t *arg, const char *v,
                            char *errbuf, size_t errbuf_size)
{
    static const char *const cmn[] = {"none", "batch", "live", "current", "prior", NULL};
    static const char *const agc[] = {"none", "max", "emax", "noise", NULL};
    static const char *const transform[] = {"legacy", "dct", "htk", NULL};
    static const char *const booleans[] = {"yes", "no", "true", "false", "1", "0", NULL};
    const char *expect = NULL;
    long l;
    if (strcmp(name, "-feat") == 0) {
        if (!feat_type_ok(v))
            expect = "s2_4x, s3_1x39, 1s_c_d_dd, 1s_c_d_ld_dd, cep_dcep or cep (optionally "
                     "\",N\" cepstra)";
    } else if (strcmp(name, "-cmn") == 0) {
        if (!one_of(v, cmn))
            expect = "none, batch, live, current or prior";
    } else if (strcmp(name, "-agc") == 0) {
        if (!one_of(v, agc))
            expect = "none, max, emax or noise";
    } else if (strcmp(name, "-transform") == 0) {
        if (!one_of(v, transform))
            expect = "legacy, dct or htk";
    } else if (strcmp(name, "-svspec") == 0) {
        if (!svspec_ok(v))
            expect = "ranges like 0-12/13-25/26-38";
    } else if (strcmp(name, "-cmninit") == 0) {
        if (!floats_ok(v))
            expect = "comma-separated numbers";
    } else if (arg->type & ARG_INTEGER) {
        if (parse_long(v, &l) != 0)
            expect = "an integer";
    } else if (arg->type & ARG_FLOATING) {
        if (parse_double(v) != 0)
            expect = "a number";
    } else if (arg->type & ARG_BOOLEAN) {
        char low[8];
        size_t i;
        for (i = 0; v[i] && i < sizeof low - 1; i++)
            low[i] = (char)tolower((unsigned char)v[i]);
        low[i] = '\0';
        if (!one_of(low, booleans))
            expect = "yes or no";
    }
    if (expect)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "feature parameters '%s': %s '%s' is invalid; expected %s", path, name, v,
                       expect);
    return 0;
}

static int check_feat_params(const char *path, char *errbuf, size_t errbuf_size)
{
    char *d = NULL;
    size_t size = 0;
    int rc = ps_model_check_file(path, "feature parameters", errbuf, errbuf_size);
    if (rc)
        return rc;
    rc = slurp(path, "feature parameters", &d, &size, errbuf, errbuf_size);
    if (rc)
        return rc;
    if (memchr(d, '\0', size)) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "feature parameters '%s' is not a text file of \"-name value\" lines", path);
        goto done;
    }
    /* Comments run from '#' to the end of the line. */
    for (char *p = d; (p = strchr(p, '#')) != NULL;)
        while (*p && *p != '\n')
            *p++ = ' ';
    char *save = NULL;
    for (char *name = strtok_r(d, " \t\r\n", &save); name;
         name = strtok_r(NULL, " \t\r\n", &save)) {
        char *value = strtok_r(NULL, " \t\r\n", &save);
        if (name[0] != '-' || !value) {
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                         "feature parameters '%s': expected \"-name value\" pairs, got '%s'", path,
                         name);
            goto done;
        }
        const arg_t *arg = ps_args();
        while (arg->name && strcmp(arg->name, name) != 0)
            arg++;
        if (!arg->name) {
            /* ps_init ignores names it does not know (e.g. -model ptm). */
            LOG_DEBUG(NULL, "pocketsphinx: %s: ignoring unknown parameter %s", path, name);
            continue;
        }
        rc = check_feat_value(path, name, arg, value, errbuf, errbuf_size);
        if (rc)
            goto done;
    }
done:
    hark_free(d);
    return rc;
}

/* ------------------------------------------------------------ hmm dir */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hark_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

void ps_model_am_clear(struct ps_model_am *am)
{
    if (!am)
        return;
    for (int i = 0; i < am->n_ciphone; i++)
        hark_free(am->ciphones[i]);
    hark_free(am->ciphones);
    hark_free(am->noisedict);
    memset(am, 0, sizeof *am);
}

int ps_model_am_has_phone(const struct ps_model_am *am, const char *phone)
{
    if (!am->ciphones)
        return 0;
    return bsearch(&phone, am->ciphones, (size_t)am->n_ciphone, sizeof *am->ciphones, cmp_str) !=
           NULL;
}

int ps_model_check_hmm(const char *dir, struct ps_model_am *am, char *errbuf, size_t errbuf_size)
{
    static const char *const names[] = {"mdef",        "means",           "variances",
                                        "sendump",     "mixture_weights", "transition_matrices",
                                        "feat.params", "noisedict"};
    enum { MDEF, MEANS, VARS, SENDUMP, MIXW, TMAT, FEATP, NOISE, N_NAMES };
    char *path[N_NAMES] = {0};
    struct stat st;
    int rc = 0;
    memset(am, 0, sizeof *am);
    if (!dir || !*dir)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "acoustic model: no directory given");
    if (stat(dir, &st) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "acoustic model directory '%s': %s", dir,
                       strerror(errno));
    if (!S_ISDIR(st.st_mode) || access(dir, R_OK | X_OK) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "acoustic model '%s' is not a readable directory (expected one holding "
                       "mdef, means, variances, transition_matrices, feat.params, sendump)",
                       dir);
    for (int i = 0; i < N_NAMES; i++) {
        path[i] = join(dir, names[i]);
        if (!path[i]) {
            rc = err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
            goto done;
        }
    }

    struct mdef_dims m = {0};
    struct gauden_dims mean = {0}, var = {0};
    int tmat[3], mixw[3];
    rc = check_feat_params(path[FEATP], errbuf, errbuf_size);
    if (!rc)
        rc = check_mdef(path[MDEF], &m, am, errbuf, errbuf_size);
    if (!rc)
        rc = check_gauden(path[MEANS], "means", &mean, errbuf, errbuf_size);
    if (!rc)
        rc = check_gauden(path[VARS], "variances", &var, errbuf, errbuf_size);
    if (rc)
        goto done;
    if (mean.n_mgau != var.n_mgau || mean.n_feat != var.n_feat || mean.n_density != var.n_density ||
        mean.veclen_sum != var.veclen_sum) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "variances '%s' do not have the dimensions of means '%s'", path[VARS],
                     path[MEANS]);
        goto done;
    }
    rc = check_3d(path[TMAT], "transition matrices", tmat, errbuf, errbuf_size);
    if (rc)
        goto done;
    if (tmat[0] != m.n_tmat || tmat[2] != tmat[1] + 1 ||
        (m.n_emit_state && tmat[1] != m.n_emit_state)) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "transition matrices '%s' are %dx%dx%d; the model definition needs %d of "
                     "%dx%d",
                     path[TMAT], tmat[0], tmat[1], tmat[2], m.n_tmat, m.n_emit_state,
                     m.n_emit_state + 1);
        goto done;
    }
    /* ps_init uses sendump when present, else mixture_weights; with neither
     * ptm_mgau exit()s. */
    if (exists(path[SENDUMP])) {
        rc = check_sendump(path[SENDUMP], mean.n_feat, m.n_sen, errbuf, errbuf_size);
    } else if (exists(path[MIXW])) {
        rc = check_3d(path[MIXW], "mixture weights", mixw, errbuf, errbuf_size);
        if (!rc && (mixw[0] != m.n_sen || mixw[1] != mean.n_feat))
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                         "mixture weights '%s' are for %d senones x %d streams; the model has "
                         "%d x %d",
                         path[MIXW], mixw[0], mixw[1], m.n_sen, mean.n_feat);
    } else {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "acoustic model '%s' has neither sendump nor mixture_weights", dir);
    }
    if (rc)
        goto done;
    if (exists(path[NOISE])) {
        rc = ps_model_check_file(path[NOISE], "filler dictionary", errbuf, errbuf_size);
        if (rc)
            goto done;
        am->noisedict = path[NOISE];
        path[NOISE] = NULL;
    }
done:
    for (int i = 0; i < N_NAMES; i++)
        hark_free(path[i]);
    if (rc)
        ps_model_am_clear(am);
    return rc;
}

/* ------------------------------------------------------------ language model */

/* Open-addressing set of strings, for the ARPA n-gram word check. */
struct strset {
    char **slot;
    size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void strset_free(struct strset *set)
{
    for (size_t i = 0; i < set->cap; i++)
        hark_free(set->slot[i]);
    hark_free(set->slot);
    memset(set, 0, sizeof *set);
}

static int strset_init(struct strset *set, size_t expected)
{
    set->cap = 16;
    while (set->cap < expected * 2)
        set->cap *= 2;
    set->n = 0;
    set->slot = hark_calloc(set->cap, sizeof *set->slot);
    return set->slot ? 0 : HARK_E_NOMEM;
}

static int strset_has(const struct strset *set, const char *s)
{
    for (size_t i = hash_str(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (!set->slot[i])
            return 0;
        if (strcmp(set->slot[i], s) == 0)
            return 1;
    }
}

/* Caller sizes the set so it never fills. */
static int strset_add(struct strset *set, const char *s)
{
    size_t i = hash_str(s) & (set->cap - 1);
    while (set->slot[i]) {
        if (strcmp(set->slot[i], s) == 0)
            return 0;
        i = (i + 1) & (set->cap - 1);
    }
    if (set->n + 1 >= set->cap)
        return HARK_E_LIMIT;
    set->slot[i] = hark_strdup(s);
    if (!set->slot[i])
        return HARK_E_NOMEM;
    set->n++;
    return 0;
}

static int bad_lm(const char *path, char *errbuf, size_t errbuf_size, const char *fmt, ...)
    HARK_PRINTF(4, 5);

static int bad_lm(const char *path, char *errbuf, size_t errbuf_size, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                   "language model '%s' is invalid: %s (expected a trie binary or ARPA LM)", path,
                   why);
}

/*
 * The unigram strings are the last k bytes, preceded by int32 k, holding
 * exactly counts[0] NUL-terminated words. Found from the end: the first word
 * ends at the counts[0]-th NUL from the end and starts within MAX_WORD_BYTES
 * before it, where the int32 in front of it equals the bytes left.
 */
static int check_trie_tail(FILE *f, const char *path, long long size, long long body,
                           uint32_t n_words, char *errbuf, size_t errbuf_size)
{
    int rc = 0;
    size_t chunk = 1 << 20;
    unsigned char *buf = hark_malloc(chunk);
    if (!buf)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    unsigned char last;
    if (read_at(f, size - 1, &last, 1) != 0 || last != '\0') {
        rc =
            err_set(errbuf, errbuf_size, HARK_E_MODEL,
                    "language model '%s' is truncated (its word list does not end the file)", path);
        goto done;
    }
    uint32_t seen = 0;
    long long first_end = -1; /* offset of the first word's NUL */
    for (long long end = size; end > body && first_end < 0;) {
        long long start = end - (long long)chunk < body ? body : end - (long long)chunk;
        if (read_at(f, start, buf, (size_t)(end - start)) != 0) {
            rc = bad_lm(path, errbuf, errbuf_size, "read error at byte %lld", start);
            goto done;
        }
        for (long long i = end - start - 1; i >= 0; i--)
            if (buf[i] == '\0' && ++seen == n_words) {
                first_end = start + i;
                break;
            }
        end = start;
    }
    if (first_end < 0) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "language model '%s' is truncated: fewer than the %u words its header "
                     "declares",
                     path, n_words);
        goto done;
    }
    long long words = -1;
    for (long long p = first_end; p >= first_end - MAX_WORD_BYTES && p - 4 >= body; p--) {
        unsigned char k[4];
        if (read_at(f, p - 4, k, 4) != 0)
            break;
        if ((long long)get_i32(k, 0) == size - p) {
            words = p;
            break;
        }
    }
    if (words < 0) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "language model '%s' is truncated or corrupt: its word list does not match "
                     "the %u words its header declares",
                     path, n_words);
        goto done;
    }
    /* The search needs </s> (without it ps_init fails with a vaguer message). */
    static const char end_word[] = "</s>";
    int has_end = 0;
    for (long long pos = words; pos < size && !has_end;) {
        size_t n = size - pos < (long long)chunk ? (size_t)(size - pos) : chunk;
        if (read_at(f, pos, buf, n) != 0)
            break;
        /* Stop at the last complete word of the chunk so no word is split. */
        size_t stop = n;
        while (stop > 0 && buf[stop - 1] != '\0')
            stop--;
        if (stop == 0)
            break;
        for (size_t i = 0; i < stop;) {
            size_t len = strlen((const char *)buf + i);
            if (len == sizeof end_word - 1 && memcmp(buf + i, end_word, len) == 0)
                has_end = 1;
            i += len + 1;
        }
        pos += (long long)stop;
    }
    if (!has_end)
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "language model '%s' has no </s> word; the decoder needs it", path);
done:
    hark_free(buf);
    return rc;
}

static int check_trie(FILE *f, const char *path, long long size, char *errbuf, size_t errbuf_size)
{
    size_t off = strlen(TRIE_MAGIC);
    unsigned char order;
    uint32_t counts[LM_MAX_ORDER];
    if (read_at(f, (long long)off, &order, 1) != 0)
        return bad_lm(path, errbuf, errbuf_size, "truncated header (%lld bytes)", size);
    if (order < 1 || order > LM_MAX_ORDER)
        return bad_lm(path, errbuf, errbuf_size, "n-gram order %d, 1 to 5 supported", (int)order);
    off += 1;
    for (int i = 0; i < order; i++, off += 4) {
        unsigned char b[4];
        if (read_at(f, (long long)off, b, 4) != 0)
            return bad_lm(path, errbuf, errbuf_size, "truncated header (%lld bytes)", size);
        counts[i] = get_u32(b, 0);
        if (counts[i] > 2000000000u)
            return bad_lm(path, errbuf, errbuf_size, "implausible n-gram count %u",
                          (unsigned)counts[i]);
    }
    if (counts[0] < 1)
        return bad_lm(path, errbuf, errbuf_size, "no unigrams");
    return check_trie_tail(f, path, size, (long long)off, counts[0], errbuf, errbuf_size);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/*
 * ARPA: optional preamble, "\data\", "ngram N=count" for N = 1..order, then
 * per order "\N-grams:" and exactly count lines "prob w1..wN [backoff]",
 * then "\end\". sphinxbase skips malformed n-gram lines but keeps the count,
 * and then reads uninitialised entries (seen as a crash), so every line and
 * every word must be right.
 */
static int check_arpa(FILE *f, const char *path, char *errbuf, size_t errbuf_size)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long lineno = 0, counts[LM_MAX_ORDER + 1] = {0};
    int order = 0, rc = 0;
    struct strset words = {0};
    if (fseeko(f, 0, SEEK_SET) != 0)
        return bad_lm(path, errbuf, errbuf_size, "cannot seek");
    enum { PREAMBLE, COUNTS, BODY } state = PREAMBLE;
    int section = 0;
    long long in_section = 0;
    int ended = 0;
    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            rc = bad_lm(path, errbuf, errbuf_size, "binary data at line %lld", lineno);
            goto done;
        }
        char *s = trim(line);
        if (state == PREAMBLE) {
            if (strcmp(s, "\\data\\") == 0)
                state = COUNTS;
            continue;
        }
        if (state == COUNTS) {
            int n;
            long long c;
            char extra;
            if (!*s)
                continue;
            if (sscanf(s, "ngram %d=%lld%c", &n, &c, &extra) == 2) {
                if (n != order + 1 || n > LM_MAX_ORDER || c < 1) {
                    rc = bad_lm(path, errbuf, errbuf_size, "bad n-gram count line %lld", lineno);
                    goto done;
                }
                order = n;
                counts[n] = c;
                continue;
            }
            if (order < 1) {
                rc =
                    bad_lm(path, errbuf, errbuf_size, "no \"ngram 1=\" count at line %lld", lineno);
                goto done;
            }
            if (counts[1] > 50000000) {
                rc = bad_lm(path, errbuf, errbuf_size, "%lld unigrams is too many", counts[1]);
                goto done;
            }
            if (strset_init(&words, (size_t)counts[1])) {
                rc = err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
                goto done;
            }
            state = BODY;
            /* fall through: this line must be "\1-grams:" */
        }
        if (in_section > 0) {
            char *tok[LM_MAX_ORDER + 3];
            int nt = 0;
            char *save = NULL;
            for (char *t = strtok_r(s, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
                if (nt == LM_MAX_ORDER + 2) {
                    nt++;
                    break;
                }
                tok[nt++] = t;
            }
            if (nt < section + 1 || nt > section + 2 || parse_double(tok[0]) != 0 ||
                (nt == section + 2 && parse_double(tok[nt - 1]) != 0)) {
                rc = bad_lm(path, errbuf, errbuf_size, "malformed n-gram at line %lld", lineno);
                goto done;
            }
            for (int i = 1; i <= section; i++) {
                int r = section == 1 ? strset_add(&words, tok[i])
                                     : (strset_has(&words, tok[i]) ? 0 : -1);
                if (r == HARK_E_NOMEM || r == HARK_E_LIMIT) {
                    rc = bad_lm(path, errbuf, errbuf_size,
                                "more unigrams than declared (line %lld)", lineno);
                    goto done;
                }
                if (r) {
                    rc = bad_lm(path, errbuf, errbuf_size,
                                "n-gram at line %lld uses a word that is not a unigram", lineno);
                    goto done;
                }
            }
            in_section--;
            continue;
        }
        if (!*s)
            continue;
        int n;
        char colon;
        if (sscanf(s, "\\%d-grams%c", &n, &colon) == 2 && colon == ':') {
            if (n != section + 1 || n > order) {
                rc = bad_lm(path, errbuf, errbuf_size, "unexpected section at line %lld", lineno);
                goto done;
            }
            section = n;
            in_section = counts[n];
            continue;
        }
        if (strcmp(s, "\\end\\") == 0) {
            ended = 1;
            break;
        }
        rc = bad_lm(path, errbuf, errbuf_size,
                    "line %lld: more n-grams than the \\data\\ count, or stray text", lineno);
        goto done;
    }
    if (state == PREAMBLE) {
        rc = bad_lm(path, errbuf, errbuf_size, "no trie header and no \\data\\ line");
        goto done;
    }
    if (in_section > 0 || section != order || !ended) {
        rc = bad_lm(path, errbuf, errbuf_size, "ends early (%lld n-grams missing, or no \\end\\)",
                    in_section);
        goto done;
    }
    if (!strset_has(&words, "</s>"))
        rc = bad_lm(path, errbuf, errbuf_size, "no </s> unigram");
done:
    free(line); /* getline's buffer is malloc'd by libc */
    strset_free(&words);
    return rc;
}

int ps_model_check_lm(const char *path, char *errbuf, size_t errbuf_size)
{
    int rc = ps_model_check_file(path, "language model", errbuf, errbuf_size);
    if (rc)
        return rc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "language model '%s': %s", path,
                       strerror(errno));
    long long size = file_size(f);
    char head[32] = {0};
    size_t n = fread(head, 1, sizeof head - 1, f);
    if (n >= strlen(TRIE_MAGIC) && memcmp(head, TRIE_MAGIC, strlen(TRIE_MAGIC)) == 0)
        rc = check_trie(f, path, size, errbuf, errbuf_size);
    else if (n >= 2 && (unsigned char)head[0] == 0x1f && (unsigned char)head[1] == 0x8b)
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "language model '%s' is compressed; give the uncompressed trie binary or "
                     "ARPA file",
                     path);
    else if (n >= 20 && memcmp(head + 4, "Darpa Trigram LM", 16) == 0)
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                     "language model '%s' is in the old DMP format; convert it with "
                     "sphinx_lm_convert to a trie binary (.lm.bin) or ARPA file",
                     path);
    else
        rc = check_arpa(f, path, errbuf, errbuf_size);
    fclose(f);
    return rc;
}
