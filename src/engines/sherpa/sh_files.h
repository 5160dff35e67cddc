/*
 * The files of a streaming sherpa-onnx model directory, as the k2-fsa
 * releases lay them out, found and checked before anything is loaded so
 * that every missing file is named:
 *   transducer      encoder*.onnx, decoder*.onnx, joiner*.onnx, tokens.txt
 *                   (e.g. sherpa-onnx-streaming-zipformer-en-2023-06-26)
 *   paraformer      encoder*.onnx, decoder*.onnx, tokens.txt
 *                   (e.g. sherpa-onnx-streaming-paraformer-bilingual-zh-en)
 *   zipformer2-ctc  ctc*.onnx or model*.onnx, tokens.txt
 *                   (e.g. sherpa-onnx-streaming-zipformer-ctc-multi-zh-hans-2023-12-13)
 * Kind "auto": a joiner makes it a transducer, else an encoder and a decoder
 * a paraformer, else a ctc/model file a zipformer2-ctc.
 * Where a release ships both X.onnx and X.int8.onnx, the int8 file is taken
 * (what k2-fsa's own CPU examples run), except a transducer's decoder, which
 * they run in float. More than one candidate otherwise is an error naming
 * them; a `files` override ("encoder=PATH,joiner=PATH,...", roles encoder,
 * decoder, joiner, ctc, tokens) settles it, and its paths are checked too.
 * Pure: no sherpa-onnx call; reentrant.
 */
#ifndef HARK_ENGINES_SHERPA_SH_FILES_H
#define HARK_ENGINES_SHERPA_SH_FILES_H

#include <stddef.h>

enum sh_kind { SH_KIND_AUTO, SH_KIND_TRANSDUCER, SH_KIND_PARAFORMER, SH_KIND_CTC };

#define SH_PATH_MAX 4096

struct sh_files {
    enum sh_kind kind;
    char encoder[SH_PATH_MAX], decoder[SH_PATH_MAX], joiner[SH_PATH_MAX];
    char ctc[SH_PATH_MAX], tokens[SH_PATH_MAX];
};

/* "auto", "transducer", "paraformer", "zipformer2-ctc"; -1 for others. */
int sh_kind_parse(const char *name);
const char *sh_kind_name(enum sh_kind k);

/* 0, or HARK_E_MODEL (directory or a file missing or unreadable, several
 * candidates, the kind's files incomplete) or HARK_E_BAD_OPTION (a bad
 * `files` entry), with the file named in errbuf. files may be NULL or "". */
int sh_files_find(struct sh_files *out, const char *dir, enum sh_kind kind, const char *files,
                  char *errbuf, size_t errbuf_size);

#endif
