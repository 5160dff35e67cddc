/* Base modules: error table, JSON buffer, allocator accounting. */
#include "base/buf.h"
#include "base/err.h"
#include "check.h"

static void test_errors(void)
{
    ASSERT_STR_EQ(hark_strerror(0), "success");
    ASSERT_STR_EQ(hark_err_code(HARK_E_BAD_AUDIO), "bad_audio");
    ASSERT_STR_EQ(hark_err_name(HARK_E_BAD_AUDIO), "HARK_E_BAD_AUDIO");
    ASSERT_STR_EQ(hark_strerror(-9999), "unknown error");
    ASSERT_STR_EQ(hark_err_code(-9999), "unknown_error");
    /* every code has distinct, non-empty names */
    int codes[] = {
#define XX(sym, num, code, text) num,
        HARK_ERR_MAP(XX)
#undef XX
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        ASSERT(codes[i] < 0);
        for (size_t j = i + 1; j < n; j++) {
            ASSERT_NE(codes[i], codes[j]);
            ASSERT(strcmp(hark_err_code(codes[i]), hark_err_code(codes[j])) != 0);
        }
    }
    char msg[32];
    ASSERT_EQ(err_set(msg, sizeof msg, HARK_E_LIMIT, "x=%d", 5), HARK_E_LIMIT);
    ASSERT_STR_EQ(msg, "x=5");
    ASSERT_EQ(err_set(NULL, 0, HARK_E_LIMIT, "x"), HARK_E_LIMIT);
}

static void test_json(void)
{
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    buf_json_key(&b, "a");
    buf_json_str(&b, "q\"\\\n\x01 é");
    buf_json_key(&b, "n");
    buf_json_num(&b, 1.25);
    buf_json_key(&b, "i");
    buf_json_num(&b, 42);
    buf_json_key(&b, "z");
    buf_json_num(&b, 0.0004);
    buf_putc(&b, '}');
    ASSERT_STR_EQ(b.data, "{\"a\":\"q\\\"\\\\\\n\\u0001 é\",\"n\":1.25,\"i\":42,\"z\":0}");
    buf_reset(&b);
    buf_json_str(&b, "bad\xff\xfe utf8");
    ASSERT_STR_EQ(b.data, "\"bad\xEF\xBF\xBD\xEF\xBF\xBD utf8\"");
    buf_reset(&b);
    buf_printf(&b, "%s-%d", "x", 7);
    buf_consume(&b, 2);
    ASSERT_STR_EQ(b.data, "7");
    buf_deinit(&b);
}

static void test_alloc_failure(void)
{
    struct buf b;
    buf_init(&b);
    mem_fail_after(1);
    buf_puts(&b, "hello");
    ASSERT(b.oom);
    buf_puts(&b, "more");
    ASSERT_EQ(b.len, 0);
    buf_deinit(&b);
    mem_fail_after(0);
}

static void test_mem_grow(void)
{
    float *a = NULL;
    size_t cap = 0;
    ASSERT_OK(mem_grow(&a, &cap, 10, sizeof *a));
    ASSERT_EQ(cap, 10);
    a[9] = 1.5f;
    ASSERT_OK(mem_grow(&a, &cap, 11, sizeof *a)); /* at least doubles */
    ASSERT_EQ(cap, 20);
    ASSERT(a[9] == 1.5f);
    ASSERT_OK(mem_grow(&a, &cap, 5, sizeof *a)); /* never shrinks */
    ASSERT_EQ(cap, 20);
    float *before = a;
    ASSERT_EQ(mem_grow(&a, &cap, SIZE_MAX / 2, sizeof *a), -1); /* overflow: unchanged */
    ASSERT(a == before && cap == 20);
    mem_fail_after(1);
    ASSERT_EQ(mem_grow(&a, &cap, 100, sizeof *a), -1);
    mem_fail_after(0);
    ASSERT(a == before && cap == 20 && a[9] == 1.5f);
    hark_free(a);
}

int main(void)
{
    RUN(test_errors);
    RUN(test_json);
    RUN(test_alloc_failure);
    RUN(test_mem_grow);
    return 0;
}
