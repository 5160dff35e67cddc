#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *hark_version(void)
{
    return "0.1.0";
}

const char *hark_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XX(sym, num, code, text)                                                                   \
    case num:                                                                                      \
        return text;
        HARK_ERR_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *hark_err_name(int err)
{
    switch (err) {
    case 0:
        return "HARK_OK";
#define XX(sym, num, code, text)                                                                   \
    case num:                                                                                      \
        return "HARK_E_" #sym;
        HARK_ERR_MAP(XX)
#undef XX
    }
    return "HARK_E_UNKNOWN";
}

const char *hark_err_code(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define XX(sym, num, code, text)                                                                   \
    case num:                                                                                      \
        return code;
        HARK_ERR_MAP(XX)
#undef XX
    }
    return "unknown_error";
}

int err_set(char *buf, size_t size, int err, const char *fmt, ...)
{
    if (buf && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
    }
    return err;
}
