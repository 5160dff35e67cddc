/* sherpa-onnx's C API through dlopen, and the forked probe (see sh_lib.h). */
#include "engines/sherpa/sh_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"

#define NPM_DIR "node_modules/sherpa-onnx-linux-x64/"

static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sh_lib lib;
static char lib_path[4096];
static int lib_loaded;

/* Where sh_lib_open looks when no path is given, after the loader's own
 * search path; relative entries are under the working directory. */
static const char *const npm_dirs[] = {
    NPM_DIR,
    "/usr/local/lib/" NPM_DIR,
    "/usr/lib/" NPM_DIR,
};

#define HINT                                                                                       \
    "install it with `npm install " SH_LIB_NPM "` and pass the path of its " SH_LIB_NAME           \
    " with --sherpa-lib (HARK_SHERPA_LIB)"

static int resolve(void *h, char *errbuf, size_t errbuf_size)
{
    struct {
        const char *name;
        void **slot;
    } syms[] = {
#define S(field, sym) {#sym, (void **)&lib.field}
        S(version, SherpaOnnxGetVersionStr),
        S(git_sha1, SherpaOnnxGetGitSha1),
        S(rec_create, SherpaOnnxCreateOnlineRecognizer),
        S(rec_destroy, SherpaOnnxDestroyOnlineRecognizer),
        S(stream_create, SherpaOnnxCreateOnlineStream),
        S(stream_destroy, SherpaOnnxDestroyOnlineStream),
        S(accept, SherpaOnnxOnlineStreamAcceptWaveform),
        S(ready, SherpaOnnxIsOnlineStreamReady),
        S(decode, SherpaOnnxDecodeOnlineStream),
        S(result, SherpaOnnxGetOnlineStreamResult),
        S(result_free, SherpaOnnxDestroyOnlineRecognizerResult),
        S(input_finished, SherpaOnnxOnlineStreamInputFinished),
        S(vad_create, SherpaOnnxCreateVoiceActivityDetector),
        S(vad_destroy, SherpaOnnxDestroyVoiceActivityDetector),
        S(vad_accept, SherpaOnnxVoiceActivityDetectorAcceptWaveform),
        S(vad_detected, SherpaOnnxVoiceActivityDetectorDetected),
        S(vad_empty, SherpaOnnxVoiceActivityDetectorEmpty),
        S(vad_clear, SherpaOnnxVoiceActivityDetectorClear),
        S(vad_flush, SherpaOnnxVoiceActivityDetectorFlush),
        S(vad_reset, SherpaOnnxVoiceActivityDetectorReset),
#undef S
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        /* POSIX's documented way to store dlsym's result in a function pointer. */
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot)
            return err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                           "%s lacks %s: not sherpa-onnx's C API %s; " HINT, lib_path, syms[i].name,
                           SH_LIB_VERSION);
    }
    const char *v = lib.version();
    if (!v || strcmp(v, SH_LIB_VERSION) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                       "%s is sherpa-onnx %s; hark declares the C API of %s (struct layouts "
                       "differ between versions); " HINT,
                       lib_path, v ? v : "(unknown)", SH_LIB_VERSION);
    return 0;
}

static void *try_open(const char *path, char *why, size_t why_size)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, why_size, "%s", e ? e : "dlopen failed");
    }
    return h;
}

int sh_lib_open(const struct sh_lib **out, const char *path, char *errbuf, size_t errbuf_size)
{
    *out = NULL;
    int rc = 0;
    pthread_mutex_lock(&lib_lock);
    if (lib_loaded) {
        if (path && *path && strcmp(path, lib_path) != 0)
            rc =
                err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                        "sherpa-onnx is already loaded from %s; one library per process", lib_path);
        else
            *out = &lib;
        pthread_mutex_unlock(&lib_lock);
        return rc;
    }
    char why[512] = "";
    void *h = NULL;
    if (path && *path) {
        snprintf(lib_path, sizeof lib_path, "%s", path);
        h = try_open(path, why, sizeof why);
        if (!h)
            rc = err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                         "cannot load sherpa-onnx from %s: %s; " HINT, path, why);
    } else {
        snprintf(lib_path, sizeof lib_path, "%s", SH_LIB_NAME);
        h = try_open(SH_LIB_NAME, why, sizeof why);
        for (size_t i = 0; !h && i < sizeof npm_dirs / sizeof npm_dirs[0]; i++) {
            snprintf(lib_path, sizeof lib_path, "%s%s%s", npm_dirs[i][0] == '/' ? "" : "./",
                     npm_dirs[i], SH_LIB_NAME);
            if (access(lib_path, F_OK) == 0)
                h = try_open(lib_path, why, sizeof why);
        }
        if (!h)
            rc = err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                         "sherpa-onnx's " SH_LIB_NAME " was not found (searched the loader "
                         "path, ./" NPM_DIR ", /usr/local/lib/" NPM_DIR ", /usr/lib/" NPM_DIR
                         "); " HINT);
    }
    if (h && (rc = resolve(h, errbuf, errbuf_size)) != 0) {
        dlclose(h);
        h = NULL;
    }
    if (h) {
        lib.path = lib_path;
        lib_loaded = 1;
        *out = &lib;
        LOG_INFO(NULL, "sherpa-onnx %s (%s) loaded from %s", lib.version(), lib.git_sha1(),
                 lib_path);
    } else {
        memset(&lib, 0, sizeof lib);
    }
    pthread_mutex_unlock(&lib_lock);
    return rc;
}

/* The last non-empty line of what the child printed: the library logs its
 * reason last ("Errors in config" follows the real one, so that is skipped). */
static void last_reason(char *text, char *out, size_t n)
{
    out[0] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || strstr(line, "Errors in config") || strstr(line, "terminate called"))
            continue;
        /* "/path/file.cc:Func:59 message": keep the message */
        const char *msg = line;
        const char *sp = strchr(line, ' ');
        if (sp && memchr(line, ':', (size_t)(sp - line)))
            msg = sp + 1;
        while (*msg == ' ')
            msg++;
        snprintf(out, n, "%s", msg);
    }
}

int sh_lib_probe(const struct sh_lib *l, int (*try)(const struct sh_lib *lib, const void *arg),
                 const void *arg, const char *what, char *errbuf, size_t errbuf_size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return err_set(errbuf, errbuf_size, HARK_E_INTERNAL, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return err_set(errbuf, errbuf_size, HARK_E_INTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* The child: its stderr (where sherpa-onnx and onnxruntime write)
         * goes to the parent; it never returns into hark. */
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        signal(SIGPIPE, SIG_DFL);
        _exit(try(l, arg) ? 3 : 0);
    }
    close(fds[1]);
    /* Read everything (the pipe must not fill up and stall the child); keep
     * the last 4 KB. */
    char text[4096];
    size_t len = 0;
    for (;;) {
        char chunk[1024];
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (len + (size_t)r >= sizeof text) {
            size_t drop = len + (size_t)r - (sizeof text - 1);
            if (drop > len)
                drop = len;
            memmove(text, text + drop, len - drop);
            len -= drop;
        }
        size_t take = (size_t)r < sizeof text - 1 - len ? (size_t)r : sizeof text - 1 - len;
        memcpy(text + len, chunk + (size_t)r - take, take);
        len += take;
    }
    text[len] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    char reason[512];
    last_reason(text, reason, sizeof reason);
    if (WIFSIGNALED(status))
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "%s: sherpa-onnx could not load it (%s; the loader died of signal %d)", what,
                       reason[0] ? reason : "no message", WTERMSIG(status));
    return err_set(errbuf, errbuf_size, HARK_E_MODEL, "%s: sherpa-onnx refused it (%s)", what,
                   reason[0] ? reason : "no message");
}
