/* json.c - the strict JSON parser behind the safetensors reader (json.h).
 * Recursive descent over a byte buffer; the recursion is bounded by
 * max_depth, memory by max_bytes. It knows nothing about safetensors: the
 * header's own rules (which keys, which types) are checked by safetensors.c. */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

/* Numbers longer than this are refused: no header needs them, and it keeps
 * the conversion buffer on the stack. */
#define MAX_NUMBER_TEXT 400

typedef struct parser {
    const char *prefix;
    const uint8_t *s;
    size_t len, pos;
    int depth, max_depth;
    size_t used, max_bytes;
    uint32_t max_array;
} parser;

static tg_status fail_at(parser *p, size_t at, tg_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static tg_status fail_at(parser *p, size_t at, tg_status code, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tg__fail(code, "%s: offset %zu: %s", p->prefix, at, what);
}

/* Every allocation of the tree is charged against max_bytes, so that hostile
 * input (a million tiny arrays) cannot make the tree much larger than the
 * text. Only the slack a container gives back when it is closed is credited:
 * the cap bounds what the tree holds at any time. */
static void *charge(parser *p, size_t old_bytes, void *old, size_t bytes)
{
    size_t extra = bytes > old_bytes ? bytes - old_bytes : 0;
    if (extra > p->max_bytes - p->used) {
        fail_at(p, p->pos, TG_ERANGE, "the parsed header would need more than %zu bytes",
                p->max_bytes);
        return NULL;
    }
    void *q = old ? tg__realloc(old, bytes) : tg__malloc(bytes);
    if (!q) {
        fail_at(p, p->pos, TG_ENOMEM, "out of memory for %zu bytes", bytes);
        return NULL;
    }
    p->used += extra;
    return q;
}

static void free_node(tg__json *n)
{
    if (n->kind == TG__JSON_STRING) {
        tg__free(n->u.str);
    } else if (n->kind == TG__JSON_ARRAY || n->kind == TG__JSON_OBJECT) {
        size_t count = (size_t)n->len * (n->kind == TG__JSON_OBJECT ? 2 : 1);
        for (size_t i = 0; i < count; i++)
            free_node(&n->u.items[i]);
        tg__free(n->u.items);
    }
    n->kind = TG__JSON_NULL;
}

void tg__json_free(tg__json *root)
{
    if (!root)
        return;
    free_node(root);
    tg__free(root);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        uint8_t c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at p[0..n), 0 when it is not one
 * (RFC 3629's table: no overlong forms, no surrogates, at most U+10FFFF). */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return need;
}

bool tg__utf8_valid(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- strings ---- */

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p->s[at..]; -1 when they are not there. */
static long hex4(const parser *p, size_t at)
{
    if (p->len - at < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p->s[at + (size_t)i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The string whose opening quote is at p->pos. The decoded text is never
 * longer than the raw one (every escape shrinks or keeps its length), so one
 * allocation of the raw length suffices. */
static tg_status parse_string(parser *p, tg__json *node)
{
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len)
        return fail_at(p, start - 1, TG_EFORMAT, "unterminated string");
    if (end - start > UINT32_MAX)
        return fail_at(p, start, TG_EFORMAT, "string longer than 4 GiB");
    char *out = charge(p, 0, NULL, end - start + 1);
    if (!out)
        return tg_last_status();
    size_t o = 0, i = start;
    tg_status st = TG_OK;
    while (i < end && st == TG_OK) {
        uint8_t c = p->s[i];
        if (c < 0x20) {
            st = fail_at(p, i, TG_EFORMAT, "raw control character 0x%02x in a string "
                         "(escape it)", c);
        } else if (c == '\\') {
            uint8_t e = p->s[i + 1];
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *hit = e ? strchr(from, e) : NULL;
            if (hit) {
                out[o++] = to[hit - from];
                i += 2;
                continue;
            }
            if (e != 'u') {
                if (e >= 0x20 && e < 0x7f)
                    st = fail_at(p, i, TG_EFORMAT, "invalid escape '\\%c'", e);
                else
                    st = fail_at(p, i, TG_EFORMAT, "invalid escape '\\' followed by byte "
                                 "0x%02x", e);
                break;
            }
            long cp = hex4(p, i + 2);
            if (cp < 0) {
                st = fail_at(p, i, TG_EFORMAT, "\\u needs four hex digits");
                break;
            }
            i += 6;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                st = fail_at(p, i - 6, TG_EFORMAT, "lone low surrogate \\u%04lx", cp);
                break;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                long lo = (i + 1 < end && p->s[i] == '\\' && p->s[i + 1] == 'u') ? hex4(p, i + 2)
                                                                                 : -1;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    st = fail_at(p, i - 6, TG_EFORMAT, "high surrogate \\u%04lx is not "
                                 "followed by a low surrogate", cp);
                    break;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            o += put_utf8(out + o, (uint32_t)cp);
        } else {
            size_t k = utf8_seq(p->s + i, end - i);
            if (!k) {
                st = fail_at(p, i, TG_EFORMAT, "invalid UTF-8 byte 0x%02x in a string", c);
                break;
            }
            memcpy(out + o, p->s + i, k);
            o += k;
            i += k;
        }
    }
    if (st != TG_OK) {
        tg__free(out);
        return st;
    }
    out[o] = '\0';
    node->kind = TG__JSON_STRING;
    node->len = (uint32_t)o;
    node->u.str = out;
    p->pos = end + 1;
    return TG_OK;
}

/* ---- numbers ---- */

static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* strtod on a terminated copy with the locale's decimal point, so that a
 * program that called setlocale still reads "0.5" as a half. */
static double to_double(const char *text, size_t len)
{
    char buf[MAX_NUMBER_TEXT + 16];
    const char *dp = localeconv()->decimal_point;
    size_t dp_len = dp && *dp ? strlen(dp) : 1, o = 0;
    if (dp_len > 8)
        dp_len = 1, dp = ".";
    for (size_t i = 0; i < len && o + dp_len < sizeof buf; i++) {
        if (text[i] == '.') {
            memcpy(buf + o, dp && *dp ? dp : ".", dp_len);
            o += dp_len;
        } else {
            buf[o++] = text[i];
        }
    }
    buf[o] = '\0';
    return strtod(buf, NULL);
}

static tg_status parse_number(parser *p, tg__json *node)
{
    const uint8_t *s = p->s;
    size_t i = p->pos, n = p->len, start = i;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i]))
        return fail_at(p, i, TG_EFORMAT, "a number needs a digit here");
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i]))
            return fail_at(p, start, TG_EFORMAT, "number with a leading zero");
    } else {
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return fail_at(p, i, TG_EFORMAT, "a digit must follow the decimal point");
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return fail_at(p, i, TG_EFORMAT, "the exponent needs a digit");
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i - start > MAX_NUMBER_TEXT)
        return fail_at(p, start, TG_EFORMAT, "number longer than %d characters",
                       MAX_NUMBER_TEXT);
    double v = to_double((const char *)s + start, i - start);
    if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308)
        return fail_at(p, start, TG_EFORMAT, "number %.*s is out of the range of a double",
                       (int)(i - start > 40 ? 40 : i - start), (const char *)s + start);
    node->kind = TG__JSON_NUMBER;
    node->len = (uint32_t)(i - start);
    node->u.str = (char *)(uintptr_t)(s + start); // borrowed from the input, never freed
    p->pos = i;
    return TG_OK;
}

bool tg__json_int64(const tg__json *num, int64_t *out)
{
    if (!num || num->kind != TG__JSON_NUMBER)
        return false;
    const char *s = num->u.str;
    size_t i = 0, n = num->len;
    bool neg = s[0] == '-';
    if (neg)
        i++;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (!is_digit((uint8_t)s[i]))
            return false; // a fraction or an exponent
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

bool tg__json_double(const tg__json *num, double *out)
{
    if (!num || num->kind != TG__JSON_NUMBER)
        return false;
    *out = to_double(num->u.str, num->len);
    return true;
}

/* ---- containers ---- */

static tg_status parse_value(parser *p, tg__json *node);

/* Appends a zeroed slot to items (growing by doubling); NULL on failure. */
static tg__json *push(parser *p, tg__json **items, size_t *count, size_t *cap)
{
    if (*count == *cap) {
        size_t cap2 = *cap ? *cap * 2 : 4;
        tg__json *q = charge(p, *cap * sizeof **items, *items, cap2 * sizeof **items);
        if (!q)
            return NULL;
        *items = q;
        *cap = cap2;
    }
    tg__json *slot = &(*items)[(*count)++];
    memset(slot, 0, sizeof *slot);
    return slot;
}

static void drop_items(tg__json *items, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free_node(&items[i]);
    tg__free(items);
}

static int key_cmp(const void *a, const void *b)
{
    const tg__json *x = *(const tg__json *const *)a, *y = *(const tg__json *const *)b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->u.str, y->u.str, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A duplicate key in the object's keys (items[0, 2, 4, ...]), or NULL.
 * Sorting keeps this O(n log n): a header may hold thousands of tensors. */
static const tg__json *find_duplicate(parser *p, tg__json *items, size_t members,
                                      tg_status *st)
{
    *st = TG_OK;
    if (members < 2)
        return NULL;
    const tg__json **keys = charge(p, 0, NULL, members * sizeof *keys);
    if (!keys) {
        *st = tg_last_status();
        return NULL;
    }
    for (size_t i = 0; i < members; i++)
        keys[i] = &items[2 * i];
    qsort(keys, members, sizeof *keys, key_cmp);
    const tg__json *dup = NULL;
    for (size_t i = 1; i < members && !dup; i++)
        if (key_cmp(&keys[i - 1], &keys[i]) == 0)
            dup = keys[i];
    tg__free(keys);
    return dup;
}

/* Array or object whose opening bracket is at p->pos. */
static tg_status parse_container(parser *p, tg__json *node, bool object)
{
    size_t open = p->pos++;
    if (++p->depth > p->max_depth)
        return fail_at(p, open, TG_EFORMAT, "nesting deeper than %d levels", p->max_depth);
    const uint8_t close = object ? '}' : ']';
    tg__json *items = NULL;
    size_t count = 0, cap = 0;
    tg_status st = TG_OK;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (object) {
                if (p->pos >= p->len || p->s[p->pos] != '"') {
                    st = fail_at(p, p->pos, TG_EFORMAT, p->pos >= p->len
                                     ? "unexpected end of input, expected a key"
                                     : "expected a string key");
                    break;
                }
                tg__json *key = push(p, &items, &count, &cap);
                if (!key || (st = parse_string(p, key)) != TG_OK) {
                    st = key ? st : tg_last_status();
                    if (key)
                        count--;
                    break;
                }
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') {
                    st = fail_at(p, p->pos, TG_EFORMAT, "expected ':' after the key \"%s\"",
                                 key->u.str);
                    break;
                }
                p->pos++;
            }
            if (!object && p->max_array && count >= p->max_array) {
                st = fail_at(p, p->pos, TG_EFORMAT, "array longer than %u elements",
                             (unsigned)p->max_array);
                break;
            }
            tg__json *val = push(p, &items, &count, &cap);
            if (!val) {
                st = tg_last_status();
                break;
            }
            if ((st = parse_value(p, val)) != TG_OK) {
                count--;
                break;
            }
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            st = fail_at(p, p->pos, TG_EFORMAT, p->pos >= p->len
                             ? "unexpected end of input in an %s"
                             : "expected ',' or the end of the %s", object ? "object" : "array");
            break;
        }
    }
    size_t members = object ? count / 2 : count;
    if (st == TG_OK && members > UINT32_MAX)
        st = fail_at(p, open, TG_EFORMAT, "more than 2^32 members");
    if (st == TG_OK && object) {
        const tg__json *dup = find_duplicate(p, items, members, &st);
        if (dup)
            st = fail_at(p, open, TG_EFORMAT, "duplicate key \"%s\" in an object", dup->u.str);
    }
    if (st != TG_OK) {
        drop_items(items, count);
        return st;
    }
    // Give back the doubling slack; keeping it when the shrink fails is harmless.
    if (count && count < cap) {
        tg__json *q = tg__realloc(items, count * sizeof *items);
        if (q) {
            items = q;
            p->used -= (cap - count) * sizeof *items;
        }
    }
    node->kind = object ? TG__JSON_OBJECT : TG__JSON_ARRAY;
    node->len = (uint32_t)members;
    node->u.items = items;
    p->depth--;
    return TG_OK;
}

static tg_status literal(parser *p, tg__json *node, const char *word, tg__json_kind kind)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail_at(p, p->pos, TG_EFORMAT, "invalid literal (expected %s)", word);
    node->kind = kind;
    p->pos += n;
    return TG_OK;
}

static tg_status parse_value(parser *p, tg__json *node)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail_at(p, p->pos, TG_EFORMAT, "unexpected end of input, expected a value");
    uint8_t c = p->s[p->pos];
    switch (c) {
    case '{': return parse_container(p, node, true);
    case '[': return parse_container(p, node, false);
    case '"': return parse_string(p, node);
    case 't': return literal(p, node, "true", TG__JSON_TRUE);
    case 'f': return literal(p, node, "false", TG__JSON_FALSE);
    case 'n': return literal(p, node, "null", TG__JSON_NULL);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p, node);
        if (c >= 0x21 && c < 0x7f)
            return fail_at(p, p->pos, TG_EFORMAT, "unexpected character '%c'", c);
        return fail_at(p, p->pos, TG_EFORMAT, "unexpected byte 0x%02x", c);
    }
}

tg_status tg__json_parse(const char *prefix, const char *text, size_t len,
                         const tg__json_limits *lim, tg__json **out)
{
    parser p = {.prefix = prefix ? prefix : "json", .s = (const uint8_t *)text, .len = len,
                .max_depth = lim ? lim->max_depth : 64,
                .max_bytes = lim ? lim->max_bytes : SIZE_MAX,
                .max_array = lim ? lim->max_array : 0};
    if (!text && len)
        return tg__fail(TG_EINVAL, "%s: text is NULL", p.prefix);
    tg__json *root = charge(&p, 0, NULL, sizeof *root);
    if (!root)
        return tg_last_status();
    memset(root, 0, sizeof *root);
    tg_status st = parse_value(&p, root);
    if (st == TG_OK) {
        skip_ws(&p);
        if (p.pos < p.len)
            st = fail_at(&p, p.pos, TG_EFORMAT, "trailing characters after the JSON value");
    }
    if (st != TG_OK) {
        tg__json_free(root);
        return st;
    }
    *out = root;
    return TG_OK;
}

const tg__json *tg__json_get(const tg__json *obj, const char *key)
{
    if (!obj || obj->kind != TG__JSON_OBJECT || !key)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < obj->len; i++) {
        const tg__json *k = &obj->u.items[2 * (size_t)i];
        if (k->len == n && memcmp(k->u.str, key, n) == 0)
            return &obj->u.items[2 * (size_t)i + 1];
    }
    return NULL;
}

const char *tg__json_kind_name(tg__json_kind kind)
{
    static const char *const names[] = {"null",   "false", "true",  "number",
                                        "string", "array", "object"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}
