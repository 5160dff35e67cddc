/* A small, strict JSON reader for the wire protocols' text frames, which are
 * untrusted input. Accepts exactly RFC 8259 JSON text (any value at the top
 * level) with these limits: at most JSON_MAX_LEN bytes, containers nested at
 * most JSON_MAX_DEPTH deep, strings valid UTF-8, numbers within double range,
 * member names unique within their object (RFC 8259 leaves repeats open).
 *
 * The input need not be NUL-terminated and is never read past `len`. Parsing
 * is O(len) in time (O(len log len) for objects of more than 16 members, whose
 * names are sorted to find repeats), and memory is allocated only as bytes are
 * consumed: at worst about 16 bytes per input byte while parsing and 8 kept by
 * the document (an array of one-digit numbers; measured 16 MiB peak for 1 MiB
 * of text; an object of short distinct names needs a little more, see
 * test_json's large inputs).
 *
 * Ownership: json_parse returns a document the caller frees with json_free.
 * Every json_value and string reached from it is owned by the document and
 * valid until json_free. A document is immutable after parsing, so several
 * threads may read one at once; json_parse itself is reentrant.
 *
 * The accessors accept NULL and values of the wrong type and then return the
 * "empty" answer (NULL, 0, JSON_NULL), so lookups chain without checks:
 *   json_str(json_get(json_root(doc), "type"))   -> NULL unless a string. */
#ifndef HARK_BASE_JSON_H
#define HARK_BASE_JSON_H

#include <stddef.h>

#include "hark/hark.h" /* HARK_E_* */

#define JSON_MAX_LEN ((size_t)1 << 20) /* bytes of text */
#define JSON_MAX_DEPTH 32              /* "[[1]]" has depth 2 */

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json;       /* a parsed document */
struct json_value; /* a node inside a document, borrowed from it */

/* Parses text[0..len). On success *out is the document and 0 is returned.
 * Errors (*out is then NULL):
 *   HARK_E_PROTOCOL  "invalid JSON at byte N: <what was found and expected>"
 *                    (N counts from 0; N == len when the text ends early);
 *                    also for nesting deeper than JSON_MAX_DEPTH, and for a
 *                    repeated member name: "duplicate member name \"x\"; ..."
 *                    at the repeat (names compare decoded, so "a" and
 *                    "\u0061" are the same name)
 *   HARK_E_LIMIT     len > JSON_MAX_LEN (nothing is read)
 *   HARK_E_NOMEM, HARK_E_INVAL (out NULL, or text NULL with len > 0) */
int json_parse(struct json **out, const char *text, size_t len, char *errbuf, size_t errbuf_size);
void json_free(struct json *doc); /* NULL is fine */

const struct json_value *json_root(const struct json *doc);
/* JSON_NULL also for v == NULL (e.g. a missing member). */
enum json_type json_type(const struct json_value *v);

/* Member `key` (compared by bytes) of an object (names are unique). NULL if
 * absent or obj is not an object. O(members). */
const struct json_value *json_get(const struct json_value *obj, const char *key);
/* Element count of an array or object, 0 for anything else. */
size_t json_len(const struct json_value *v);
/* Element i of an array; NULL out of range or not an array. */
const struct json_value *json_at(const struct json_value *arr, size_t i);
/* Name and value of member i of an object in document order; NULL out of
 * range or not an object. */
const char *json_key_at(const struct json_value *obj, size_t i);
const struct json_value *json_value_at(const struct json_value *obj, size_t i);

/* Decoded string, NUL-terminated; NULL if v is not a string. The string may
 * itself contain NUL bytes (from \u0000): json_str_len gives its length. */
const char *json_str(const struct json_value *v);
size_t json_str_len(const struct json_value *v);
double json_num(const struct json_value *v); /* 0 if not a number */
int json_bool(const struct json_value *v);   /* 1 for true, else 0 */

/* The value as option text for hark_options_set:
 *   string         as is
 *   number         integers below 2^53 in full ("16000", "-3"; -0 gives "0"),
 *                  others in the shortest form that reads back ("0.5", "1e+300")
 *   true / false   "true" / "false"
 *   array          its strings, numbers and booleans joined with "," ("a,b c,3")
 * Returns 0, or HARK_E_BAD_OPTION for null, objects, arrays holding arrays,
 * objects or null, strings holding NUL bytes, and array strings holding ","
 * (which the joined text could not represent); HARK_E_LIMIT if the text and
 * its NUL do not fit in size bytes. buf holds "" after any error. */
int json_to_text(const struct json_value *v, char *buf, size_t size);

#endif
