/* json.h - a small, strict JSON (RFC 8259) parser for the safetensors header
 * (lib/io/json.c). Private: never installed; tests reach it through the
 * static library.
 *
 * Strict means: exactly one value, surrounded only by JSON whitespace (space,
 * tab, CR, LF); no comments, trailing commas, single quotes, NaN/Infinity,
 * leading zeros or '+' signs; every string is valid UTF-8 with no raw control
 * character, every escape is one of RFC 8259's and \u surrogates come in
 * pairs; a key appears at most once per object. Limits keep hostile input
 * cheap: the nesting depth, the number text length, and the bytes the tree
 * may allocate are capped (tg__json_limits), so the parser's memory is a
 * fixed multiple of the input size at most. */
#ifndef TG_IO_JSON_H
#define TG_IO_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_internal.h"

typedef enum tg__json_kind {
    TG__JSON_NULL,
    TG__JSON_FALSE,
    TG__JSON_TRUE,
    TG__JSON_NUMBER,
    TG__JSON_STRING,
    TG__JSON_ARRAY,
    TG__JSON_OBJECT,
} tg__json_kind;

/* One value: 16 bytes, so that a tree costs little more than its text.
 *   STRING: u.str is the decoded, NUL-terminated text (owned by the tree), len
 *           its length in bytes (it may contain \u0000).
 *   NUMBER: u.str points at the number's text inside the parsed input (not
 *           terminated; the input must outlive the tree), len its length.
 *   ARRAY:  u.items[0..len).
 *   OBJECT: u.items[0..2*len): key, value, key, value... in input order; keys
 *           are STRING nodes. */
typedef struct tg__json {
    tg__json_kind kind;
    uint32_t len;
    union {
        char *str;
        struct tg__json *items;
    } u;
} tg__json;

typedef struct tg__json_limits {
    int max_depth;      /* nesting of arrays and objects; 1 allows only a flat one */
    size_t max_bytes;   /* heap bytes the tree may hold (nodes and decoded strings) */
    uint32_t max_array; /* elements per array (0: no limit) */
} tg__json_limits;

/* Parses text[0..len). On success *out receives the root (free it with
 * tg__json_free). Errors are recorded as "<prefix>: offset N: what" with
 * TG_EFORMAT (bad JSON, duplicate key, a number out of double range, too
 * deep, an array longer than max_array), TG_ERANGE (max_bytes exceeded) or
 * TG_ENOMEM; *out is untouched. */
tg_status tg__json_parse(const char *prefix, const char *text, size_t len,
                         const tg__json_limits *lim, tg__json **out);

/* Frees a tree from tg__json_parse. NULL is ignored. */
void tg__json_free(tg__json *root);

/* The value of member key in obj (NULL when obj is not an object or has no
 * such key). Linear: for the few-member objects of a header entry. */
const tg__json *tg__json_get(const tg__json *obj, const char *key);

/* The exact value of a NUMBER written as an integer (no fraction or
 * exponent) in int64 range; false otherwise. */
bool tg__json_int64(const tg__json *num, int64_t *out);

/* The value of a NUMBER as the nearest double; false when it is not a number.
 * Independent of the C locale. */
bool tg__json_double(const tg__json *num, double *out);

/* "null", "false", "true", "number", "string", "array" or "object". */
const char *tg__json_kind_name(tg__json_kind kind);

/* True when p[0..n) is valid UTF-8 (no overlong forms, surrogates or code
 * points beyond U+10FFFF); the writer checks names with it. */
bool tg__utf8_valid(const uint8_t *p, size_t n);

#endif
