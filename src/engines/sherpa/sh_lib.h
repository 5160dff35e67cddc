/*
 * sherpa-onnx's C API, loaded at run time (dlopen), so hark builds and runs
 * without it and only the sherpa engine and --vad silero need it.
 *
 * Where it comes from: npm's sherpa-onnx-linux-x64 ships
 * libsherpa-onnx-c-api.so and the libonnxruntime.so beside it (found through
 * the library's RPATH $ORIGIN) but no header. So the subset hark calls is
 * declared here, the structs copied field for field from sherpa-onnx's
 * c-api.h at tag v1.13.4 (the library's own SherpaOnnxGetGitSha1 is that
 * tag's commit, 14280725). Later releases append fields to these structs, and
 * a library reading fields hark never set would read past them, so
 * sh_lib_open refuses any other version (SH_LIB_VERSION) with HARK_E_ENGINE.
 *
 * The library calls std::terminate when onnxruntime cannot parse a model
 * (a corrupt or truncated .onnx file aborts the process: "Protobuf parsing
 * failed"), and exit() on some bad configurations. sh_lib_probe therefore
 * tries a configuration in a forked child first and turns its death into a
 * typed error carrying the library's own message.
 *
 * Ownership: sh_lib_open returns a process-wide handle that stays loaded
 * until exit (dlclose of onnxruntime is not safe while its threads may live);
 * opening again returns the same one. Threads: sh_lib_open is thread-safe;
 * the function pointers follow sherpa-onnx's rules (a recognizer may decode
 * different streams on different threads, as sherpa-onnx's own websocket
 * server does; one stream or detector is used by one thread at a time).
 */
#ifndef HARK_ENGINES_SHERPA_SH_LIB_H
#define HARK_ENGINES_SHERPA_SH_LIB_H

#include <stddef.h>
#include <stdint.h>

#define SH_LIB_VERSION "1.13.4"
#define SH_LIB_NAME "libsherpa-onnx-c-api.so"
#define SH_LIB_NPM "sherpa-onnx-linux-x64@" SH_LIB_VERSION

/* ---- c-api.h v1.13.4, the structs hark fills (layouts must match) ---- */

typedef struct SherpaOnnxOnlineTransducerModelConfig {
    const char *encoder;
    const char *decoder;
    const char *joiner;
} SherpaOnnxOnlineTransducerModelConfig;

typedef struct SherpaOnnxOnlineParaformerModelConfig {
    const char *encoder;
    const char *decoder;
} SherpaOnnxOnlineParaformerModelConfig;

typedef struct SherpaOnnxOnlineZipformer2CtcModelConfig {
    const char *model;
} SherpaOnnxOnlineZipformer2CtcModelConfig;

typedef struct SherpaOnnxOnlineNemoCtcModelConfig {
    const char *model;
} SherpaOnnxOnlineNemoCtcModelConfig;

typedef struct SherpaOnnxOnlineToneCtcModelConfig {
    const char *model;
} SherpaOnnxOnlineToneCtcModelConfig;

typedef struct SherpaOnnxOnlineModelConfig {
    SherpaOnnxOnlineTransducerModelConfig transducer;
    SherpaOnnxOnlineParaformerModelConfig paraformer;
    SherpaOnnxOnlineZipformer2CtcModelConfig zipformer2_ctc;
    const char *tokens;
    int32_t num_threads;
    const char *provider;
    int32_t debug;
    const char *model_type;
    const char *modeling_unit;
    const char *bpe_vocab;
    const char *tokens_buf;
    int32_t tokens_buf_size;
    SherpaOnnxOnlineNemoCtcModelConfig nemo_ctc;
    SherpaOnnxOnlineToneCtcModelConfig t_one_ctc;
} SherpaOnnxOnlineModelConfig;

typedef struct SherpaOnnxFeatureConfig {
    int32_t sample_rate;
    int32_t feature_dim;
} SherpaOnnxFeatureConfig;

typedef struct SherpaOnnxOnlineCtcFstDecoderConfig {
    const char *graph;
    int32_t max_active;
} SherpaOnnxOnlineCtcFstDecoderConfig;

typedef struct SherpaOnnxHomophoneReplacerConfig {
    const char *dict_dir;
    const char *lexicon;
    const char *rule_fsts;
} SherpaOnnxHomophoneReplacerConfig;

typedef struct SherpaOnnxOnlineRecognizerConfig {
    SherpaOnnxFeatureConfig feat_config;
    SherpaOnnxOnlineModelConfig model_config;
    const char *decoding_method;
    int32_t max_active_paths;
    int32_t enable_endpoint;
    float rule1_min_trailing_silence;
    float rule2_min_trailing_silence;
    float rule3_min_utterance_length;
    const char *hotwords_file;
    float hotwords_score;
    SherpaOnnxOnlineCtcFstDecoderConfig ctc_fst_decoder_config;
    const char *rule_fsts;
    const char *rule_fars;
    float blank_penalty;
    const char *hotwords_buf;
    int32_t hotwords_buf_size;
    SherpaOnnxHomophoneReplacerConfig hr;
} SherpaOnnxOnlineRecognizerConfig;

typedef struct SherpaOnnxOnlineRecognizerResult {
    const char *text;
    const char *tokens;
    const char *const *tokens_arr;
    float *timestamps; /* count entries, or NULL */
    int32_t count;
    const char *json;
} SherpaOnnxOnlineRecognizerResult;

typedef struct SherpaOnnxSileroVadModelConfig {
    const char *model;
    float threshold;
    float min_silence_duration;
    float min_speech_duration;
    int32_t window_size;
    float max_speech_duration;
} SherpaOnnxSileroVadModelConfig;

typedef struct SherpaOnnxTenVadModelConfig {
    const char *model;
    float threshold;
    float min_silence_duration;
    float min_speech_duration;
    int32_t window_size;
    float max_speech_duration;
} SherpaOnnxTenVadModelConfig;

typedef struct SherpaOnnxVadModelConfig {
    SherpaOnnxSileroVadModelConfig silero_vad;
    int32_t sample_rate;
    int32_t num_threads;
    const char *provider;
    int32_t debug;
    SherpaOnnxTenVadModelConfig ten_vad;
} SherpaOnnxVadModelConfig;

typedef struct SherpaOnnxOnlineRecognizer SherpaOnnxOnlineRecognizer;
typedef struct SherpaOnnxOnlineStream SherpaOnnxOnlineStream;
typedef struct SherpaOnnxVoiceActivityDetector SherpaOnnxVoiceActivityDetector;

/* The functions hark calls, resolved by sh_lib_open. */
struct sh_lib {
    const char *path; /* the file that was loaded */
    const char *(*version)(void);
    const char *(*git_sha1)(void);
    const SherpaOnnxOnlineRecognizer *(*rec_create)(const SherpaOnnxOnlineRecognizerConfig *);
    void (*rec_destroy)(const SherpaOnnxOnlineRecognizer *);
    const SherpaOnnxOnlineStream *(*stream_create)(const SherpaOnnxOnlineRecognizer *);
    void (*stream_destroy)(const SherpaOnnxOnlineStream *);
    void (*accept)(const SherpaOnnxOnlineStream *, int32_t rate, const float *, int32_t n);
    int32_t (*ready)(const SherpaOnnxOnlineRecognizer *, const SherpaOnnxOnlineStream *);
    void (*decode)(const SherpaOnnxOnlineRecognizer *, const SherpaOnnxOnlineStream *);
    const SherpaOnnxOnlineRecognizerResult *(*result)(const SherpaOnnxOnlineRecognizer *,
                                                      const SherpaOnnxOnlineStream *);
    void (*result_free)(const SherpaOnnxOnlineRecognizerResult *);
    void (*input_finished)(const SherpaOnnxOnlineStream *);
    const SherpaOnnxVoiceActivityDetector *(*vad_create)(const SherpaOnnxVadModelConfig *,
                                                         float buffer_seconds);
    void (*vad_destroy)(const SherpaOnnxVoiceActivityDetector *);
    void (*vad_accept)(const SherpaOnnxVoiceActivityDetector *, const float *, int32_t n);
    int32_t (*vad_detected)(const SherpaOnnxVoiceActivityDetector *);
    int32_t (*vad_empty)(const SherpaOnnxVoiceActivityDetector *);
    void (*vad_clear)(const SherpaOnnxVoiceActivityDetector *);
    void (*vad_flush)(const SherpaOnnxVoiceActivityDetector *);
    void (*vad_reset)(const SherpaOnnxVoiceActivityDetector *);
};

/*
 * Loads the library: `path` when not empty, else the first of
 *   1. libsherpa-onnx-c-api.so on the dynamic loader's search path
 *      (LD_LIBRARY_PATH, ldconfig's directories),
 *   2. node_modules/sherpa-onnx-linux-x64/ under the working directory,
 *   3. the global npm roots /usr/local/lib/node_modules and /usr/lib/node_modules.
 * One library per process: a second call with another path gets
 * HARK_E_ENGINE. HARK_E_ENGINE also for a library that is missing (the
 * message names the npm package to install), lacks a symbol, or is another
 * version.
 */
int sh_lib_open(const struct sh_lib **out, const char *path, char *errbuf, size_t errbuf_size);

/*
 * Runs try(lib, arg) in a forked child, which returns 0 when the object it
 * builds was created (and frees it). 0 when it was; else HARK_E_MODEL with
 * `what` and the last line the library printed (its own reason: "file ...
 * does not exist", onnxruntime's "Protobuf parsing failed") in errbuf, also
 * when the child died of a signal. HARK_E_INTERNAL when fork fails.
 * Call while no other thread is inside sherpa-onnx (the child would inherit
 * locks held by them): hark probes at load time, before any session.
 */
int sh_lib_probe(const struct sh_lib *lib, int (*try)(const struct sh_lib *lib, const void *arg),
                 const void *arg, const char *what, char *errbuf, size_t errbuf_size);

#endif
