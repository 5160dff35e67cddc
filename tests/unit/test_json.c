/* JSON reader: valid documents, every error class with its byte offset,
 * option-text conversion, inputs without a NUL terminator, allocation
 * failures, and 1 MiB inputs in linear time. Every input is copied into a heap
 * block of exactly its length first, so ASan catches any read past `len`. */
#include <locale.h>
#include <stdint.h>

#include "base/clock.h"
#include "base/json.h"
#include "check.h"

static char errbuf[256];

/* Parses the first len bytes of text from an exact-size copy. */
static int parse_n(struct json **doc, const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    ASSERT(copy);
    memcpy(copy, text, len);
    int rc = json_parse(doc, copy, len, errbuf, sizeof errbuf);
    free(copy); /* the document must not point into the input */
    return rc;
}

static struct json *parse_ok(const char *text)
{
    struct json *doc = NULL;
    int rc = parse_n(&doc, text, strlen(text));
    if (rc)
        FAIL_("parse of %s failed: %d %s", text, rc, errbuf);
    ASSERT(doc);
    return doc;
}

/* Expects HARK_E_PROTOCOL at byte `at` with `what` in the message. */
static void parse_bad_n(const char *text, size_t len, size_t at, const char *what)
{
    struct json *doc = (struct json *)&doc; /* must be reset to NULL */
    int rc = parse_n(&doc, text, len);
    if (rc != HARK_E_PROTOCOL)
        FAIL_("parse of <%.*s> gave %d, expected HARK_E_PROTOCOL", (int)len, text, rc);
    ASSERT(doc == NULL);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "invalid JSON at byte %zu: ", at);
    if (strncmp(errbuf, prefix, strlen(prefix)) != 0 || !strstr(errbuf, what))
        FAIL_("parse of <%.*s>: message \"%s\", expected \"%s...%s...\"", (int)len, text, errbuf,
              prefix, what);
}

static void parse_bad(const char *text, size_t at, const char *what)
{
    parse_bad_n(text, strlen(text), at, what);
}

static void test_scalars(void)
{
    struct json *doc = parse_ok("null");
    ASSERT_EQ(json_type(json_root(doc)), JSON_NULL);
    json_free(doc);

    doc = parse_ok(" \t\r\ntrue\n");
    ASSERT_EQ(json_type(json_root(doc)), JSON_BOOL);
    ASSERT_EQ(json_bool(json_root(doc)), 1);
    json_free(doc);

    doc = parse_ok("false");
    ASSERT_EQ(json_type(json_root(doc)), JSON_BOOL);
    ASSERT_EQ(json_bool(json_root(doc)), 0);
    json_free(doc);

    doc = parse_ok("42");
    ASSERT_EQ(json_type(json_root(doc)), JSON_NUMBER);
    ASSERT_NEAR(json_num(json_root(doc)), 42, 0);
    json_free(doc);

    doc = parse_ok("\"hi there\"");
    ASSERT_EQ(json_type(json_root(doc)), JSON_STRING);
    ASSERT_STR_EQ(json_str(json_root(doc)), "hi there");
    ASSERT_EQ(json_str_len(json_root(doc)), 8);
    json_free(doc);

    doc = parse_ok("\"\"");
    ASSERT_STR_EQ(json_str(json_root(doc)), "");
    ASSERT_EQ(json_str_len(json_root(doc)), 0);
    json_free(doc);

    doc = parse_ok("[]");
    ASSERT_EQ(json_type(json_root(doc)), JSON_ARRAY);
    ASSERT_EQ(json_len(json_root(doc)), 0);
    ASSERT(json_at(json_root(doc), 0) == NULL);
    json_free(doc);

    doc = parse_ok("{ }");
    ASSERT_EQ(json_type(json_root(doc)), JSON_OBJECT);
    ASSERT_EQ(json_len(json_root(doc)), 0);
    ASSERT(json_get(json_root(doc), "a") == NULL);
    json_free(doc);
}

static void test_protocol_messages(void)
{
    struct json *doc = parse_ok("{\"type\":\"config\",\"sample_rate\":16000,\n"
                                "  \"interim_results\":true,\"vocabulary\":[\"foo\",\"bar baz\"]}");
    const struct json_value *root = json_root(doc);
    ASSERT_EQ(json_len(root), 4);
    ASSERT_STR_EQ(json_str(json_get(root, "type")), "config");
    ASSERT_EQ(json_type(json_get(root, "sample_rate")), JSON_NUMBER);
    ASSERT_NEAR(json_num(json_get(root, "sample_rate")), 16000, 0);
    ASSERT_EQ(json_bool(json_get(root, "interim_results")), 1);
    const struct json_value *vocab = json_get(root, "vocabulary");
    ASSERT_EQ(json_len(vocab), 2);
    ASSERT_STR_EQ(json_str(json_at(vocab, 0)), "foo");
    ASSERT_STR_EQ(json_str(json_at(vocab, 1)), "bar baz");
    ASSERT(json_at(vocab, 2) == NULL);
    ASSERT(json_get(root, "missing") == NULL);
    ASSERT(json_get(root, "typ") == NULL);   /* prefix of a key */
    ASSERT(json_get(root, "types") == NULL); /* key is a prefix */
    /* member order is document order */
    ASSERT_STR_EQ(json_key_at(root, 0), "type");
    ASSERT_STR_EQ(json_key_at(root, 3), "vocabulary");
    ASSERT(json_value_at(root, 3) == vocab);
    ASSERT(json_key_at(root, 4) == NULL && json_value_at(root, 4) == NULL);
    char text[64];
    ASSERT_OK(json_to_text(json_get(root, "sample_rate"), text, sizeof text));
    ASSERT_STR_EQ(text, "16000");
    ASSERT_OK(json_to_text(json_get(root, "interim_results"), text, sizeof text));
    ASSERT_STR_EQ(text, "true");
    ASSERT_OK(json_to_text(vocab, text, sizeof text));
    ASSERT_STR_EQ(text, "foo,bar baz");
    json_free(doc);

    doc = parse_ok("{\"type\":\"Finalize\"}");
    ASSERT_STR_EQ(json_str(json_get(json_root(doc), "type")), "Finalize");
    json_free(doc);
}

static void test_nested(void)
{
    struct json *doc =
        parse_ok("{\"a\":[1,{\"b\":[[],[null]]},{}],\"c\":{\"d\":{\"e\":\"deep\"}},\"f\":-2}");
    const struct json_value *root = json_root(doc);
    const struct json_value *a = json_get(root, "a");
    ASSERT_EQ(json_type(a), JSON_ARRAY);
    ASSERT_EQ(json_len(a), 3);
    ASSERT_NEAR(json_num(json_at(a, 0)), 1, 0);
    const struct json_value *b = json_get(json_at(a, 1), "b");
    ASSERT_EQ(json_len(b), 2);
    ASSERT_EQ(json_len(json_at(b, 0)), 0);
    ASSERT_EQ(json_type(json_at(json_at(b, 1), 0)), JSON_NULL);
    ASSERT(json_at(json_at(b, 1), 0) != NULL); /* a real null, not a missing one */
    ASSERT_EQ(json_type(json_at(a, 2)), JSON_OBJECT);
    ASSERT_EQ(json_len(json_at(a, 2)), 0);
    ASSERT_STR_EQ(json_str(json_get(json_get(json_get(root, "c"), "d"), "e")), "deep");
    ASSERT_NEAR(json_num(json_get(root, "f")), -2, 0);
    json_free(doc);

    /* exactly JSON_MAX_DEPTH levels are fine */
    char deep[2 * JSON_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    deep[n++] = '7';
    for (int i = 0; i < JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = 0;
    doc = parse_ok(deep);
    const struct json_value *v = json_root(doc);
    for (int i = 0; i < JSON_MAX_DEPTH; i++) {
        ASSERT_EQ(json_len(v), 1);
        v = json_at(v, 0);
    }
    ASSERT_NEAR(json_num(v), 7, 0);
    json_free(doc);
}

static void test_escapes(void)
{
    struct json *doc =
        parse_ok("[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\", \"caf\\u00e9\", \"caf\\u00E9\","
                 " \"\\ud83d\\ude00!\", \"a\\u0000b\", \"\\u20ac\", \"raw \xc3\xa9 "
                 "\xf0\x9f\x98\x80 \xe2\x82\xac\", \"\\u0041\\u007f\\u0080\"]");
    const struct json_value *r = json_root(doc);
    ASSERT_STR_EQ(json_str(json_at(r, 0)), "\" \\ / \b \f \n \r \t");
    ASSERT_STR_EQ(json_str(json_at(r, 1)), "caf\xc3\xa9");
    ASSERT_STR_EQ(json_str(json_at(r, 2)), "caf\xc3\xa9");
    ASSERT_STR_EQ(json_str(json_at(r, 3)), "\xf0\x9f\x98\x80!"); /* U+1F600 */
    ASSERT_EQ(json_str_len(json_at(r, 4)), 3);
    ASSERT(memcmp(json_str(json_at(r, 4)), "a\0b", 4) == 0);
    ASSERT_STR_EQ(json_str(json_at(r, 5)), "\xe2\x82\xac");
    ASSERT_STR_EQ(json_str(json_at(r, 6)), "raw \xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac");
    ASSERT_STR_EQ(json_str(json_at(r, 7)), "A\x7f\xc2\x80");
    json_free(doc);

    /* keys are decoded the same way; a key holding U+0000 could never be
     * looked up as a C string, so it is refused */
    doc = parse_ok("{\"k\\u00e9y\":1,\"\\ud834\\udd1e\":3}");
    r = json_root(doc);
    ASSERT_NEAR(json_num(json_get(r, "k\xc3\xa9y")), 1, 0);
    ASSERT_NEAR(json_num(json_get(r, "\xf0\x9d\x84\x9e")), 3, 0); /* U+1D11E */
    json_free(doc);
    {
        char err[200];
        const char *bad = "{\"a\\u0000b\":2}";
        ASSERT_EQ(json_parse(&doc, bad, strlen(bad), err, sizeof err), HARK_E_PROTOCOL);
        ASSERT(strstr(err, "at byte 1") && strstr(err, "u0000"));
    }

    /* highest code points of each UTF-8 length, raw and escaped */
    doc = parse_ok("[\"\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\", \"\\udbff\\udfff\"]");
    r = json_root(doc);
    ASSERT_STR_EQ(json_str(json_at(r, 0)), "\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf");
    ASSERT_STR_EQ(json_str(json_at(r, 1)), "\xf4\x8f\xbf\xbf");
    json_free(doc);
}

static void test_numbers(void)
{
    struct json *doc = parse_ok("[-0, 0, 1e3, 1.5E-2, 12345678901234567890, -123, 0.1, 1E+2, 2e-2,"
                                " 123456789012345, 1234567890123456, 9007199254740993, 1e-400,"
                                " -1.7976931348623157e308, 0.000001]");
    const struct json_value *r = json_root(doc);
    ASSERT_EQ(json_len(r), 15);
    ASSERT(json_num(json_at(r, 0)) == 0 && signbit(json_num(json_at(r, 0))));
    ASSERT(json_num(json_at(r, 1)) == 0 && !signbit(json_num(json_at(r, 1))));
    ASSERT(json_num(json_at(r, 2)) == 1000.0);
    ASSERT(json_num(json_at(r, 3)) == 0.015);
    ASSERT(json_num(json_at(r, 4)) == 12345678901234567890.0);
    ASSERT(json_num(json_at(r, 5)) == -123.0);
    ASSERT(json_num(json_at(r, 6)) == 0.1);
    ASSERT(json_num(json_at(r, 7)) == 100.0);
    ASSERT(json_num(json_at(r, 8)) == 0.02);
    ASSERT(json_num(json_at(r, 9)) == 123456789012345.0);
    ASSERT(json_num(json_at(r, 10)) == 1234567890123456.0);
    ASSERT(json_num(json_at(r, 11)) == 9007199254740992.0); /* round to even */
    ASSERT(json_num(json_at(r, 12)) == 0.0);                /* underflow is accepted */
    ASSERT(json_num(json_at(r, 13)) == -1.7976931348623157e308);
    ASSERT(json_num(json_at(r, 14)) == 0.000001);
    json_free(doc);
}

static void test_duplicate_keys(void)
{
    /* A repeated member name is an error naming it, at the repeat: which
     * value it meant is not knowable (issue 10, item 14). */
    parse_bad("{\"a\":1,\"b\":true,\"a\":2}", 16, "duplicate member name \"a\"");
    parse_bad("{\"sample_rate\":8000,\"sample_rate\":16000}", 20,
              "duplicate member name \"sample_rate\"; each name may appear once");
    /* the same name spelt differently is the same name */
    parse_bad("{\"ab\":1,\"a\\u0062\":2}", 8, "duplicate member name \"a\\u0062\"");
    /* nested objects are checked on their own; the first repeat in document
     * order is the one named, also past the pairwise-check size */
    parse_bad("[{\"x\":{\"y\":1,\"y\":2}}]", 13, "\"y\"");
    parse_bad("{\"k0\":0,\"k1\":0,\"k2\":0,\"k3\":0,\"k4\":0,\"k5\":0,\"k6\":0,\"k7\":0,\"k8\":0,"
              "\"k9\":0,\"kA\":0,\"kB\":0,\"kC\":0,\"kD\":0,\"kE\":0,\"kF\":0,\"kG\":0,\"k9\":1,"
              "\"k0\":1}",
              120, "\"k9\"");
    /* a long name is cut short in the message */
    char text[300];
    char name[101];
    memset(name, 'n', 100);
    name[100] = 0;
    snprintf(text, sizeof text, "{\"%s\":1,\"%s\":2}", name, name);
    parse_bad(text, 106, "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\"");
    /* the same name in different objects is fine */
    struct json *doc = parse_ok("{\"a\":{\"a\":1},\"b\":{\"a\":2}}");
    const struct json_value *r = json_root(doc);
    ASSERT_EQ(json_len(r), 2);
    ASSERT_NEAR(json_num(json_get(json_get(r, "b"), "a")), 2, 0);
    json_free(doc);
}

static void test_errors(void)
{
    /* truncated */
    parse_bad("", 0, "unexpected end of input, expected a value");
    parse_bad("  \n", 3, "unexpected end of input, expected a value");
    parse_bad("[1,2", 4, "unexpected end of input, expected ',' or ']'");
    parse_bad("[1,", 3, "unexpected end of input, expected a value");
    parse_bad("{\"a\":", 5, "unexpected end of input, expected a value");
    parse_bad("{\"a\"", 4, "unexpected end of input, expected ':'");
    parse_bad("{", 1, "unexpected end of input, expected '\"' to start a member name");
    parse_bad("\"abc", 4, "expected '\"' to close the string at byte 0");
    parse_bad("\"ab\\", 4, "unexpected end of input, expected an escape");
    parse_bad("\"\\u12", 5, "unexpected end of input, expected 4 hex digits");
    parse_bad("\"\\ud83d", 7, "unexpected end of input, expected a \\uDC00-\\uDFFF escape");
    parse_bad("\"\xe2\x82", 3, "unexpected end of input inside a UTF-8 sequence");
    parse_bad("tru", 3, "unexpected end of input, expected true");
    parse_bad("-", 1, "unexpected end of input, expected a digit after '-'");
    parse_bad("1.", 2, "unexpected end of input, expected a digit after '.'");
    parse_bad("1e", 2, "expected a digit in the exponent");
    parse_bad("1e+", 3, "expected a digit in the exponent");
    /* trailing commas: reported at the comma */
    parse_bad("[1,]", 2, "trailing comma before ']'");
    parse_bad("[1, \n ]", 2, "trailing comma before ']'");
    parse_bad("{\"a\":1,}", 6, "trailing comma before '}'");
    parse_bad("[,]", 1, "unexpected ',', expected a value");
    /* leading zeros and other malformed numbers */
    parse_bad("01", 1, "leading zero");
    parse_bad("[-012]", 3, "leading zero");
    parse_bad("00.5", 1, "leading zero");
    parse_bad("1.e5", 2, "unexpected 'e', expected a digit after '.'");
    parse_bad(".5", 0, "unexpected '.', expected a value");
    parse_bad("+1", 0, "unexpected '+', expected a value");
    parse_bad("-a", 1, "unexpected 'a', expected a digit after '-'");
    parse_bad("[1e400]", 1, "number out of range");
    parse_bad("-1e309", 0, "number out of range");
    parse_bad("NaN", 0, "unexpected 'N', expected a value");
    parse_bad("0x10", 1, "unexpected 'x', expected only whitespace");
    /* bad escapes */
    parse_bad("\"\\x\"", 2, "unexpected 'x', expected an escape: \\\" \\\\ \\/ \\b");
    parse_bad("\"\\U00e9\"", 2, "unexpected 'U', expected an escape");
    parse_bad("\"\\u12G4\"", 5, "unexpected 'G', expected 4 hex digits after \\u");
    parse_bad("\"\\'\"", 2, "expected an escape");
    /* lone surrogates: reported at the escape's backslash */
    parse_bad("\"ab\\ud83d\"", 3, "lone high surrogate \\uD83D");
    parse_bad("\"ab\\ud83dx\\ude00\"", 3, "lone high surrogate");
    parse_bad("\"\\ud83d\\n\"", 1, "lone high surrogate");
    parse_bad("\"\\ud83d\\u0041\"", 1, "lone high surrogate");
    parse_bad("\"\\ud83d\\ud83d\"", 1, "lone high surrogate");
    parse_bad("\"\\ude00\"", 1, "lone low surrogate \\uDE00");
    parse_bad("\"\\ud83d\\uZ\"", 9, "expected 4 hex digits");
    /* invalid UTF-8: reported at the first byte that cannot belong */
    parse_bad("\"a\xff\"", 2, "invalid UTF-8 byte 0xff in a string");
    parse_bad("\"\x80\"", 1, "invalid UTF-8 byte 0x80");
    parse_bad("\"\xc0\xaf\"", 1, "invalid UTF-8 byte 0xc0");         /* overlong '/' */
    parse_bad("\"\xc1\xbf\"", 1, "invalid UTF-8 byte 0xc1");         /* overlong */
    parse_bad("\"\xe0\x80\xaf\"", 2, "invalid UTF-8 byte 0x80");     /* overlong */
    parse_bad("\"\xf0\x80\x80\xaf\"", 2, "invalid UTF-8 byte 0x80"); /* overlong */
    parse_bad("\"\xed\xa0\x80\"", 2, "invalid UTF-8 byte 0xa0");     /* UTF-8 surrogate */
    parse_bad("\"\xf4\x90\x80\x80\"", 2, "invalid UTF-8 byte 0x90"); /* above U+10FFFF */
    parse_bad("\"\xf5\x80\x80\x80\"", 1, "invalid UTF-8 byte 0xf5");
    parse_bad("\"\xc3(\"", 2, "invalid UTF-8 byte 0x28");
    parse_bad("\"\xe2\x82(\"", 3, "invalid UTF-8 byte 0x28");
    parse_bad("\"\xc3\"", 2, "invalid UTF-8 byte 0x22");
    parse_bad("[\xc3\xa9]", 1, "unexpected byte 0xc3, expected a value");
    parse_bad("\xef\xbb\xbf{}", 0, "unexpected byte 0xef"); /* no BOM */
    /* control characters in strings */
    parse_bad("\"a\x01\"", 2, "control character 0x01 in a string; write it as \\u0001");
    parse_bad("\"line\nbreak\"", 5, "control character 0x0a");
    parse_bad("\"tab\there\"", 4, "control character 0x09");
    parse_bad_n("\"a\0b\"", 5, 2, "control character 0x00");
    parse_bad_n("[1,\0]", 5, 3, "unexpected byte 0x00, expected a value");
    /* depth 33 */
    char deep[JSON_MAX_DEPTH + 2];
    memset(deep, '[', JSON_MAX_DEPTH + 1);
    deep[JSON_MAX_DEPTH + 1] = 0;
    parse_bad(deep, JSON_MAX_DEPTH, "nesting deeper than 32 levels");
    char deep_obj[8 * (JSON_MAX_DEPTH + 1) + 1] = "";
    size_t last_open = 0;
    for (int i = 0; i <= JSON_MAX_DEPTH; i++) {
        last_open = strlen(deep_obj);
        strcat(deep_obj, i % 2 ? "{\"k\": " : "[");
    }
    ASSERT_EQ(last_open, 16 * 1 + 16 * 6);
    parse_bad(deep_obj, last_open, "nesting deeper than 32 levels; at most 32 are accepted");
    /* trailing garbage */
    parse_bad("{} x", 3, "unexpected 'x', expected only whitespace after the value");
    parse_bad("1 2", 2, "expected only whitespace");
    parse_bad("[1]]", 3, "unexpected ']', expected only whitespace");
    parse_bad("\"a\"\"b\"", 3, "expected only whitespace");
    parse_bad_n("null\0", 5, 4, "unexpected byte 0x00, expected only whitespace");
    /* structure */
    parse_bad("[1 2]", 3, "unexpected '2', expected ',' or ']' after an array element");
    parse_bad("{\"a\":1 \"b\":2}", 7, "expected ',' or '}' after an object member");
    parse_bad("{1:2}", 1, "unexpected '1', expected '\"' to start a member name");
    parse_bad("{'a':2}", 1, "expected '\"' to start a member name");
    parse_bad("{\"a\" 1}", 5, "unexpected '1', expected ':' after a member name");
    parse_bad("{\"a\":}", 5, "unexpected '}', expected a value");
    parse_bad("[}", 1, "unexpected '}', expected a value");
    parse_bad("trUe", 2, "unexpected 'U', expected true");
    parse_bad("nul", 3, "expected null");
    parse_bad("fals e", 4, "unexpected ' ', expected false");
    parse_bad("x", 0, "unexpected 'x', expected a value");
    parse_bad("\v1", 0, "unexpected byte 0x0b, expected a value"); /* not JSON whitespace */
}

static void test_api_edges(void)
{
    struct json *doc = NULL;
    /* NULL text with len 0 is an empty document */
    ASSERT_EQ(json_parse(&doc, NULL, 0, errbuf, sizeof errbuf), HARK_E_PROTOCOL);
    ASSERT_EQ(json_parse(&doc, NULL, 1, errbuf, sizeof errbuf), HARK_E_INVAL);
    ASSERT_EQ(json_parse(NULL, "1", 1, errbuf, sizeof errbuf), HARK_E_INVAL);
    /* errbuf is optional and never overrun */
    ASSERT_EQ(json_parse(&doc, "[", 1, NULL, 0), HARK_E_PROTOCOL);
    char small[12];
    memset(small, 'z', sizeof small);
    ASSERT_EQ(json_parse(&doc, "[", 1, small, 8), HARK_E_PROTOCOL);
    ASSERT_STR_EQ(small, "invalid");
    ASSERT_EQ(small[8], 'z');
    /* size limit: checked before reading anything */
    size_t big = JSON_MAX_LEN + 1;
    char *text = malloc(big);
    ASSERT(text);
    memset(text, ' ', big);
    text[0] = '"';
    text[JSON_MAX_LEN - 1] = '"';
    ASSERT_EQ(json_parse(&doc, text, big, errbuf, sizeof errbuf), HARK_E_LIMIT);
    ASSERT(strstr(errbuf, "1048577 bytes is too long; at most 1048576"));
    /* exactly JSON_MAX_LEN is accepted: one string of 1 MiB - 2 bytes */
    memset(text + 1, 'a', JSON_MAX_LEN - 2);
    ASSERT_OK(json_parse(&doc, text, JSON_MAX_LEN, errbuf, sizeof errbuf));
    ASSERT_EQ(json_str_len(json_root(doc)), JSON_MAX_LEN - 2);
    ASSERT_EQ(strlen(json_str(json_root(doc))), JSON_MAX_LEN - 2);
    json_free(doc);
    free(text);

    /* accessors on the wrong types and NULL */
    doc = parse_ok("[\"s\", 1, {\"k\": 2}]");
    const struct json_value *r = json_root(doc);
    ASSERT(json_get(r, "k") == NULL);
    ASSERT(json_key_at(r, 0) == NULL && json_value_at(r, 0) == NULL);
    ASSERT(json_at(json_at(r, 2), 0) == NULL);
    ASSERT(json_get(json_at(r, 2), NULL) == NULL);
    ASSERT(json_str(json_at(r, 1)) == NULL && json_str_len(json_at(r, 1)) == 0);
    ASSERT(json_num(json_at(r, 0)) == 0 && json_bool(json_at(r, 1)) == 0);
    ASSERT_EQ(json_len(json_at(r, 0)), 0);
    ASSERT_EQ(json_type(NULL), JSON_NULL);
    ASSERT(json_root(NULL) == NULL && json_get(NULL, "k") == NULL && json_at(NULL, 0) == NULL);
    ASSERT(json_str(NULL) == NULL && json_len(NULL) == 0 && json_num(NULL) == 0);
    json_free(doc);
    json_free(NULL);
}

static void to_text_ok(const char *json, const char *expect)
{
    struct json *doc = parse_ok(json);
    char text[128];
    int rc = json_to_text(json_root(doc), text, sizeof text);
    if (rc || strcmp(text, expect) != 0)
        FAIL_("json_to_text(%s) = %d \"%s\", expected \"%s\"", json, rc, text, expect);
    json_free(doc);
}

static void to_text_bad(const char *json, int expect_rc, size_t size)
{
    struct json *doc = parse_ok(json);
    char text[128];
    memset(text, 'z', sizeof text);
    int rc = json_to_text(json_root(doc), text, size);
    if (rc != expect_rc)
        FAIL_("json_to_text(%s) = %d, expected %d", json, rc, expect_rc);
    ASSERT_STR_EQ(text, "");
    json_free(doc);
}

static void test_to_text(void)
{
    to_text_ok("\"en-US\"", "en-US");
    to_text_ok("\"\"", "");
    to_text_ok("\"a,b\"", "a,b"); /* a lone string may hold commas */
    to_text_ok("16000", "16000");
    to_text_ok("1.6e4", "16000");
    to_text_ok("-3", "-3");
    to_text_ok("-0", "0");
    to_text_ok("0.5", "0.5");
    to_text_ok("0.1", "0.1");
    to_text_ok("1.5E-2", "0.015");
    to_text_ok("2.5e-7", "2.5e-07");
    to_text_ok("1e300", "1e+300");
    to_text_ok("9007199254740991", "9007199254740991");
    to_text_ok("12345678901234567890", "1.2345678901234567e+19");
    to_text_ok("0.30000000000000004", "0.30000000000000004");
    to_text_ok("true", "true");
    to_text_ok("false", "false");
    to_text_ok("[\"foo\", \"bar baz\"]", "foo,bar baz");
    to_text_ok("[1, 2.5, true, \"x\"]", "1,2.5,true,x");
    to_text_ok("[]", "");
    to_text_ok("[\"\"]", "");

    to_text_bad("null", HARK_E_BAD_OPTION, 128);
    to_text_bad("{}", HARK_E_BAD_OPTION, 128);
    to_text_bad("{\"a\":1}", HARK_E_BAD_OPTION, 128);
    to_text_bad("[[1]]", HARK_E_BAD_OPTION, 128);
    to_text_bad("[\"a\", {}]", HARK_E_BAD_OPTION, 128);
    to_text_bad("[1, null]", HARK_E_BAD_OPTION, 128);
    to_text_bad("[\"a,b\"]", HARK_E_BAD_OPTION, 128);
    to_text_bad("\"a\\u0000b\"", HARK_E_BAD_OPTION, 128);
    /* too small: the text and its NUL must fit */
    to_text_bad("\"abcd\"", HARK_E_LIMIT, 4);
    to_text_bad("12345", HARK_E_LIMIT, 5);
    to_text_bad("[\"ab\", \"cd\"]", HARK_E_LIMIT, 5);
    to_text_bad("false", HARK_E_LIMIT, 1);

    struct json *doc = parse_ok("[\"ab\", \"cd\"]");
    char text[6];
    ASSERT_OK(json_to_text(json_root(doc), text, sizeof text)); /* exact fit */
    ASSERT_STR_EQ(text, "ab,cd");
    ASSERT_EQ(json_to_text(json_root(doc), text, 0), HARK_E_LIMIT);
    ASSERT_EQ(json_to_text(json_root(doc), NULL, 4), HARK_E_INVAL);
    ASSERT_EQ(json_to_text(NULL, text, sizeof text), HARK_E_BAD_OPTION);
    json_free(doc);
}

/* Numbers read and print with '.', whatever LC_NUMERIC the program chose.
 * Needs a decimal-comma locale; skipped when none is installed. */
static void test_decimal_comma_locale(void)
{
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *set = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !set; i++)
        set = setlocale(LC_NUMERIC, names[i]);
    if (!set) {
        fprintf(stderr, "  (no decimal-comma locale installed; skipped)\n");
        return;
    }
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 0.5);
    ASSERT_STR_EQ(probe, "0,5"); /* the locale really is active */
    struct json *doc = parse_ok("[0.5, 1.5e-2]");
    ASSERT(json_num(json_at(json_root(doc), 0)) == 0.5);
    ASSERT(json_num(json_at(json_root(doc), 1)) == 0.015);
    char text[32];
    ASSERT_OK(json_to_text(json_root(doc), text, sizeof text));
    ASSERT_STR_EQ(text, "0.5,0.015");
    json_free(doc);
    setlocale(LC_NUMERIC, "C");
}

static void test_no_nul_terminator(void)
{
    /* Slices of a larger buffer: the bytes after the slice must be ignored. */
    const char buf[] = "xx[1,\"ab\"]yy{\"k\":\"v\"}zz\"abc\"true123";
    struct json *doc = NULL;
    ASSERT_OK(json_parse(&doc, buf + 2, 8, errbuf, sizeof errbuf)); /* [1,"ab"] */
    ASSERT_EQ(json_len(json_root(doc)), 2);
    ASSERT_STR_EQ(json_str(json_at(json_root(doc), 1)), "ab");
    json_free(doc);
    ASSERT_OK(json_parse(&doc, buf + 12, 9, errbuf, sizeof errbuf)); /* {"k":"v"} */
    ASSERT_STR_EQ(json_str(json_get(json_root(doc), "k")), "v");
    json_free(doc);
    ASSERT_OK(json_parse(&doc, buf + 32, 2, errbuf, sizeof errbuf)); /* "12" of 123 */
    ASSERT(json_num(json_root(doc)) == 12);
    json_free(doc);
    /* cut short inside each kind of token: the following bytes would complete it */
    parse_bad_n("\"abc\"", 4, 4, "unexpected end of input");
    parse_bad_n("true", 3, 3, "unexpected end of input, expected true");
    parse_bad_n("[1,2]", 4, 4, "unexpected end of input");
    parse_bad_n("\"\\u00e9\"", 5, 5, "expected 4 hex digits");
    parse_bad_n("\"\\ud83d\\ude00\"", 9, 9, "expected 4 hex digits");
    parse_bad_n("\"\\ud83d\\ude00\"", 8, 8, "unexpected end of input, expected a \\uDC00");
    parse_bad_n("\"\xf0\x9f\x98\x80\"", 4, 4, "inside a UTF-8 sequence");
    parse_bad_n("1.5e10", 4, 4, "expected a digit in the exponent");
    parse_bad_n("-1", 1, 1, "expected a digit after '-'");
    /* every proper prefix of a valid document fails, and never reads past it */
    const char *full = "{\"a\":[1,-2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\xc3\xa9\"],\"b\":{}}";
    for (size_t n = 0; n < strlen(full); n++) {
        struct json *d = (struct json *)&d;
        ASSERT_EQ(parse_n(&d, full, n), HARK_E_PROTOCOL);
        ASSERT(d == NULL);
    }
    doc = parse_ok(full);
    json_free(doc);
}

static void test_alloc_failures(void)
{
    /* A document big enough for several arena blocks, stack growths and a
     * number that goes through strtod; every allocation failure in turn. */
    size_t cap = 128 * 1024, n = 0;
    char *text = malloc(cap);
    ASSERT(text);
    n += (size_t)snprintf(text + n, cap - n, "{\"xs\":[");
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s{\"k%d\":\"v\\u00e9%d\",\"n\":%d.25}",
                              i ? "," : "", i, i, i);
    n += (size_t)snprintf(text + n, cap - n, "]}");
    ASSERT(n < cap);
    int failures = 0;
    long outstanding = mem_outstanding();
    for (long k = 1;; k++) {
        struct json *doc = NULL;
        mem_fail_after(k);
        int rc = json_parse(&doc, text, n, errbuf, sizeof errbuf);
        mem_fail_after(0);
        if (rc == 0) {
            ASSERT_EQ(json_len(json_get(json_root(doc), "xs")), 2000);
            json_free(doc);
            break;
        }
        ASSERT_EQ(rc, HARK_E_NOMEM);
        ASSERT(doc == NULL);
        ASSERT(strstr(errbuf, "out of memory"));
        ASSERT_EQ(mem_outstanding(), outstanding);
        failures++;
        ASSERT(k < 1000);
    }
    ASSERT_GE(failures, 5);
    free(text);
}

static double seconds_since(int64_t t0)
{
    return (double)(clock_mono_ns() - t0) / 1e9;
}

/* The worst shapes at the size limit parse in linear time. A quadratic step
 * anywhere would take minutes at 1 MiB; the bound is loose for sanitizers. */
static void test_large_inputs(void)
{
    size_t len = JSON_MAX_LEN;
    char *text = malloc(len);
    ASSERT(text);
    struct json *doc = NULL;

    /* [0,0,0,...]: the most values per byte */
    size_t n = 0;
    text[n++] = '[';
    while (n + 3 <= len) {
        if (n > 1)
            text[n++] = ',';
        text[n++] = '0';
    }
    text[n++] = ']';
    int64_t t0 = clock_mono_ns();
    ASSERT_OK(json_parse(&doc, text, n, errbuf, sizeof errbuf));
    ASSERT_LE(seconds_since(t0), 5);
    ASSERT_EQ(json_len(json_root(doc)), (n - 1) / 2);
    ASSERT_GE(n, len - 2);
    json_free(doc);

    /* {"0":0,"1":0,...}: the most distinct names; the duplicate check
     * sorts them (O(n log n)), then json_get scans */
    n = 0;
    text[n++] = '{';
    for (int i = 0; n + 24 < len; i++)
        n += (size_t)snprintf(text + n, len - n, "%s\"%x\":%d", i ? "," : "", i, i % 10);
    text[n++] = '}';
    t0 = clock_mono_ns();
    ASSERT_OK(json_parse(&doc, text, n, errbuf, sizeof errbuf));
    ASSERT_LE(seconds_since(t0), 5);
    ASSERT_GE(json_len(json_root(doc)), 100000);
    ASSERT(json_get(json_root(doc), "0") == json_value_at(json_root(doc), 0));
    json_free(doc);

    /* the same object with its last name repeating the first: refused */
    memcpy(text + n - 1, ",\"0\":1}", 7);
    t0 = clock_mono_ns();
    ASSERT_EQ(json_parse(&doc, text, n + 6, errbuf, sizeof errbuf), HARK_E_PROTOCOL);
    ASSERT_LE(seconds_since(t0), 5);
    ASSERT(strstr(errbuf, "duplicate member name \"0\""));

    /* {"":0,"":0,...}: refused at the second name, at once */
    n = 0;
    text[n++] = '{';
    for (int i = 0; n + 16 < len; i++)
        n += (size_t)snprintf(text + n, len - n, "%s\"\":%d", i ? "," : "", i % 10);
    text[n++] = '}';
    t0 = clock_mono_ns();
    ASSERT_EQ(json_parse(&doc, text, n, errbuf, sizeof errbuf), HARK_E_PROTOCOL);
    ASSERT_LE(seconds_since(t0), 5);
    ASSERT(strstr(errbuf, "at byte 6: duplicate member name \"\""));

    /* one number with a million digits goes through strtod */
    memset(text, '7', len);
    text[1] = '.';
    t0 = clock_mono_ns();
    ASSERT_OK(json_parse(&doc, text, len, errbuf, sizeof errbuf));
    ASSERT_LE(seconds_since(t0), 5);
    ASSERT_NEAR(json_num(json_root(doc)), 7.7777777777777777, 1e-15);
    json_free(doc);

    /* a string of escapes and 4-byte sequences */
    n = 0;
    text[n++] = '"';
    while (n + 13 < len) {
        memcpy(text + n, "\\ud83d\\ude00", 12);
        n += 12;
    }
    text[n++] = '"';
    t0 = clock_mono_ns();
    ASSERT_OK(json_parse(&doc, text, n, errbuf, sizeof errbuf));
    ASSERT_LE(seconds_since(t0), 5);
    ASSERT_EQ(json_str_len(json_root(doc)), (n - 2) / 12 * 4);
    json_free(doc);

    /* 1 MiB of nested-but-legal arrays: [[[...]],[[...]],...] at depth 32 */
    n = 0;
    text[n++] = '[';
    while (n + 2 * JSON_MAX_DEPTH + 2 < len) {
        if (n > 1)
            text[n++] = ',';
        for (int d = 1; d < JSON_MAX_DEPTH; d++)
            text[n++] = '[';
        for (int d = 1; d < JSON_MAX_DEPTH; d++)
            text[n++] = ']';
    }
    text[n++] = ']';
    t0 = clock_mono_ns();
    ASSERT_OK(json_parse(&doc, text, n, errbuf, sizeof errbuf));
    ASSERT_LE(seconds_since(t0), 5);
    json_free(doc);
    free(text);
}

int main(void)
{
    RUN(test_scalars);
    RUN(test_protocol_messages);
    RUN(test_nested);
    RUN(test_escapes);
    RUN(test_numbers);
    RUN(test_duplicate_keys);
    RUN(test_errors);
    RUN(test_api_edges);
    RUN(test_to_text);
    RUN(test_decimal_comma_locale);
    RUN(test_no_nul_terminator);
    RUN(test_alloc_failures);
    RUN(test_large_inputs);
    return 0;
}
