/* check_checkpoint.c - the checkpoint suite: the strict JSON parser, the
 * safetensors reader and writer (round trips, every header rule, damaged and
 * random files), atomic writing under injected I/O failures, allocation
 * failures and a kill mid-save, model save/load, bitwise training resume in
 * a fresh process, and the accessors checkpoints rely on (optimizer
 * hyperparameters, batcher state). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/json.h"
#include "tapegrad/tapegrad.h"
#include "tg_check.h"

/* Each test gets its own scratch directory: tests run in parallel forks. */
static char scratch[512];

static void make_scratch(void)
{
    snprintf(scratch, sizeof scratch, "%s/ckpt-%ld", TG_TEST_BUILD_DIR, (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", scratch, scratch);
    ck_assert_int_eq(system(cmd), 0);
}

static void drop_scratch(void)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", scratch);
}

static const char *spath(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
    return buf[k];
}

/* Number of entries in the scratch directory (temporary files left over). */
static int dir_entries(void)
{
    DIR *d = opendir(scratch);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(p, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return p;
}

/* A safetensors file from a header text and raw data bytes. */
static void write_st(const char *path, const char *header, const void *data, size_t n)
{
    size_t h = strlen(header);
    unsigned char *buf = malloc(8 + h + n + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    if (n)
        memcpy(buf + 8 + h, data, n);
    write_bytes(path, buf, 8 + h + n);
    free(buf);
}

/* ==== JSON ================================================================ */

static tg_status parse(const char *text, tg__json **out)
{
    tg_clear_error();
    tg__json_limits lim = {.max_depth = 16, .max_bytes = 1 << 20};
    return tg__json_parse("t", text, strlen(text), &lim, out);
}

START_TEST(test_json_valid)
{
    tg__json *j = NULL;
    ASSERT_OK(parse(" {\"a\": [1, -2.5e3, true, false, null], \"b\": {\"c\": \"x\\n\\u00e9\"},"
                    " \"\": 0 } \r\n", &j));
    ck_assert_int_eq(j->kind, TG__JSON_OBJECT);
    ck_assert_uint_eq(j->len, 3);
    const tg__json *a = tg__json_get(j, "a");
    ck_assert_int_eq(a->kind, TG__JSON_ARRAY);
    ck_assert_uint_eq(a->len, 5);
    int64_t v;
    ck_assert(tg__json_int64(&a->u.items[0], &v) && v == 1);
    ck_assert(!tg__json_int64(&a->u.items[1], &v)); // not an integer
    double d;
    ck_assert(tg__json_double(&a->u.items[1], &d) && d == -2500.0);
    ck_assert_int_eq(a->u.items[2].kind, TG__JSON_TRUE);
    ck_assert_int_eq(a->u.items[3].kind, TG__JSON_FALSE);
    ck_assert_int_eq(a->u.items[4].kind, TG__JSON_NULL);
    const tg__json *c = tg__json_get(tg__json_get(j, "b"), "c");
    ck_assert_str_eq(c->u.str, "x\n\xc3\xa9");
    ck_assert_ptr_nonnull(tg__json_get(j, ""));
    ck_assert_ptr_null(tg__json_get(j, "zz"));
    tg__json_free(j);

    // Escapes, a surrogate pair (U+1F600), raw UTF-8, and an embedded NUL.
    ASSERT_OK(parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\ud83d\\ude00\xe2\x82\xac\\u0000z\"", &j));
    ck_assert_uint_eq(j->len, 8 + 4 + 3 + 2);
    ck_assert(memcmp(j->u.str, "\"\\/\b\f\n\r\t\xf0\x9f\x98\x80\xe2\x82\xac\0z", j->len) == 0);
    tg__json_free(j);

    ASSERT_OK(parse("[]", &j));
    ck_assert_uint_eq(j->len, 0);
    tg__json_free(j);
    ASSERT_OK(parse("-0", &j));
    ck_assert(tg__json_int64(j, &v) && v == 0);
    tg__json_free(j);
}
END_TEST

START_TEST(test_json_int64_edges)
{
    tg__json *j = NULL;
    int64_t v;
    ASSERT_OK(parse("[9223372036854775807, -9223372036854775808, 9223372036854775808, 1e3, "
                    "1.0]", &j));
    ck_assert(tg__json_int64(&j->u.items[0], &v) && v == INT64_MAX);
    ck_assert(tg__json_int64(&j->u.items[1], &v) && v == INT64_MIN);
    ck_assert(!tg__json_int64(&j->u.items[2], &v));
    ck_assert(!tg__json_int64(&j->u.items[3], &v));
    ck_assert(!tg__json_int64(&j->u.items[4], &v));
    ck_assert(!tg__json_int64(j, &v)); // an array
    tg__json_free(j);
}
END_TEST

static const struct {
    const char *text, *msg;
} json_bad[] = {
    {"", "offset 0: unexpected end of input"},
    {"   ", "offset 3: unexpected end of input"},
    {"{} x", "offset 3: trailing characters"},
    {"[1] [2]", "trailing characters"},
    {"\"a\\q\"", "offset 2: invalid escape '\\q'"},
    {"\"a\\x41\"", "invalid escape '\\x'"},
    {"\"\\u12\"", "\\u needs four hex digits"},
    {"\"\\u12g4\"", "\\u needs four hex digits"},
    {"\"\\ud800\"", "high surrogate \\ud800 is not followed by a low surrogate"},
    {"\"\\ud800\\u0041\"", "not followed by a low surrogate"},
    {"\"\\udc00\"", "lone low surrogate"},
    {"\"a\tb\"", "raw control character 0x09"},
    {"\"\xc0\xaf\"", "invalid UTF-8 byte 0xc0"},
    {"\"\xed\xa0\x80\"", "invalid UTF-8 byte 0xed"},
    {"\"\xf4\x90\x80\x80\"", "invalid UTF-8"},
    {"\"\xe2\x82\"", "invalid UTF-8"},
    {"\"abc", "offset 0: unterminated string"},
    {"{\"a\":1,\"a\":2}", "duplicate key \"a\""},
    {"{\"b\":1,\"a\":2,\"c\":3,\"a\":4}", "duplicate key \"a\""},
    {"[1,]", "unexpected character ']'"},
    {"{\"a\":1,}", "expected a string key"},
    {"{a:1}", "expected a string key"},
    {"{'a':1}", "expected a string key"},
    {"{\"a\" 1}", "expected ':' after the key \"a\""},
    {"[1 2]", "expected ',' or the end of the array"},
    {"[1", "unexpected end of input in an array"},
    {"01", "leading zero"},
    {"-", "a number needs a digit"},
    {"+1", "unexpected character '+'"},
    {"1.", "a digit must follow the decimal point"},
    {".5", "unexpected character '.'"},
    {"1e", "the exponent needs a digit"},
    {"1e999", "out of the range of a double"},
    {"-1e400", "out of the range of a double"},
    {"NaN", "unexpected character 'N'"},
    {"Infinity", "unexpected character 'I'"},
    {"tru", "invalid literal (expected true)"},
    {"nul", "invalid literal (expected null)"},
    {"/* c */ 1", "unexpected character '/'"},
    {"\x01", "unexpected byte 0x01"},
    {"[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", "nesting deeper than 16 levels"},
};

START_TEST(test_json_errors)
{
    tg__json *j = (tg__json *)&j; // must stay untouched
    tg__json *const before = j;
    ASSERT_FAIL(parse(json_bad[_i].text, &j), TG_EFORMAT, json_bad[_i].msg);
    ck_assert_msg(strncmp(tg_last_error(), "t: offset ", 10) == 0, "%s", tg_last_error());
    ck_assert_ptr_eq(j, before);
}
END_TEST

START_TEST(test_json_huge_number_text)
{
    char buf[1000];
    memset(buf, '1', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    tg__json *j = NULL;
    ASSERT_FAIL(parse(buf, &j), TG_EFORMAT, "number longer than 400 characters");
    // Long but tiny is fine (underflows to 0), and so is the largest double.
    ASSERT_OK(parse("[1e-999, 1.7976931348623157e308]", &j));
    double d;
    ck_assert(tg__json_double(&j->u.items[1], &d) && d == 1.7976931348623157e308);
    tg__json_free(j);
}
END_TEST

START_TEST(test_json_depth_and_budget)
{
    char deep[200];
    for (int i = 0; i < 100; i++) {
        deep[i] = '[';
        deep[199 - i] = ']';
    }
    tg__json *j = NULL;
    tg__json_limits lim = {.max_depth = 100, .max_bytes = 1 << 20};
    ASSERT_OK(tg__json_parse("t", deep, sizeof deep, &lim, &j));
    tg__json_free(j);
    lim.max_depth = 99;
    ASSERT_FAIL(tg__json_parse("t", deep, sizeof deep, &lim, &j), TG_EFORMAT,
                "offset 99: nesting deeper than 99 levels");
    // A million tiny values under a small budget: refused, not allocated.
    size_t n = 2000001;
    char *many = malloc(n + 1);
    many[0] = '[';
    for (size_t i = 1; i < n - 1; i += 2) {
        many[i] = '0';
        many[i + 1] = ',';
    }
    many[n - 2] = '0';
    many[n - 1] = ']';
    lim = (tg__json_limits){.max_depth = 4, .max_bytes = 1 << 20};
    ASSERT_FAIL(tg__json_parse("t", many, n, &lim, &j), TG_ERANGE,
                "would need more than 1048576 bytes");
    lim.max_bytes = 64u << 20;
    ASSERT_OK(tg__json_parse("t", many, n, &lim, &j));
    ck_assert_uint_eq(j->len, 1000000);
    tg__json_free(j);
    lim.max_array = 1000;
    ASSERT_FAIL(tg__json_parse("t", many, n, &lim, &j), TG_EFORMAT,
                "offset 2001: array longer than 1000 elements");
    free(many);
}
END_TEST

START_TEST(test_json_many_keys_duplicate_last)
{
    // Duplicate detection is O(n log n): 20000 keys are instant.
    size_t cap = 20000 * 16 + 64, at = 0;
    char *s = malloc(cap);
    at += (size_t)snprintf(s + at, cap - at, "{");
    for (int i = 0; i < 20000; i++)
        at += (size_t)snprintf(s + at, cap - at, "\"k%d\":%d,", i, i);
    snprintf(s + at, cap - at, "\"k7\":0}");
    tg__json *j = NULL;
    tg__json_limits lim = {.max_depth = 4, .max_bytes = 64u << 20};
    ASSERT_FAIL(tg__json_parse("t", s, strlen(s), &lim, &j), TG_EFORMAT, "duplicate key \"k7\"");
    free(s);
}
END_TEST

START_TEST(test_json_alloc_failures)
{
    const char *text = "{\"a\":[1,2,{\"b\":\"\\u00e9x\"}],\"c\":\"d\",\"e\":{\"f\":[[]]}}";
    tg__json_limits lim = {.max_depth = 8, .max_bytes = 1 << 20};
    for (long k = 0;; k++) {
        tg__json *j = NULL;
        tg__alloc_fail_after(k, 0);
        tg_status st = tg__json_parse("t", text, strlen(text), &lim, &j);
        tg__alloc_fail_after(-1, 0);
        if (st == TG_OK) {
            tg__json_free(j);
            ck_assert_int_gt(k, 3);
            break;
        }
        ASSERT_FAIL(st, TG_ENOMEM, "out of memory");
    }
}
END_TEST

START_TEST(test_utf8_valid)
{
    ck_assert(tg__utf8_valid((const uint8_t *)"abc\xc3\xa9\xf0\x9f\x98\x80", 9));
    ck_assert(!tg__utf8_valid((const uint8_t *)"\xff", 1));
    ck_assert(!tg__utf8_valid((const uint8_t *)"\xc3", 1));
    ck_assert(!tg__utf8_valid((const uint8_t *)"\xe0\x80\x80", 3)); // overlong
}
END_TEST

/* ==== safetensors: round trips ============================================ */

START_TEST(test_st_roundtrip)
{
    make_scratch();
    tg_tensor *a = tg_tensor_arange(TG_F32, 0, 6, 1);
    tg_tensor *b = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 2),
                                          (const double[]){1.5, -2, 1e-300, 3.25});
    tg_tensor *s = tg_tensor_full(TG_F64, 0, NULL, 7);
    tg_tensor *e = tg_tensor_zeros(TG_F32, TG_SHAPE(0, 3));
    const char *names[] = {"layer.w", "quote\"back\\slash\ttab \xc3\xa9", "scalar", "empty"};
    tg_tensor *ts[] = {a, b, s, e};
    const char *meta[] = {"epoch", "3", "note", "line\nbreak \"q\"", NULL};
    ASSERT_OK(tg_safetensors_write(spath("x.safetensors"), 4, names, ts, meta));

    // The header is padded so that the data starts on an 8-byte boundary.
    size_t n;
    unsigned char *raw = read_bytes(spath("x.safetensors"), &n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | raw[i];
    ck_assert_uint_eq((8 + h) % 8, 0);
    ck_assert_uint_eq(n, 8 + h + 6 * 4 + 4 * 8 + 8);
    free(raw);

    tg_safetensors *f = tg_safetensors_read(spath("x.safetensors"));
    ck_assert_msg(f != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(f), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(tg_safetensors_name(f, i), names[i]); // data order
    tg_tensor *a2 = tg_safetensors_find(f, "layer.w");
    ck_assert_int_eq(tg_tensor_dtype(a2), TG_F32);
    ck_assert(memcmp(tg_tensor_data(a2), tg_tensor_data(a), 24) == 0);
    tg_tensor *b2 = tg_safetensors_find(f, names[1]);
    ck_assert_int_eq(tg_tensor_dtype(b2), TG_F64);
    ck_assert_int_eq(tg_tensor_ndim(b2), 2);
    ck_assert(memcmp(tg_tensor_data(b2), tg_tensor_data(b), 32) == 0);
    ck_assert_int_eq(tg_tensor_ndim(tg_safetensors_find(f, "scalar")), 0);
    ck_assert(tg_tensor_item(tg_safetensors_find(f, "scalar")) == 7);
    ck_assert_int_eq(tg_tensor_numel(tg_safetensors_find(f, "empty")), 0);
    ck_assert_int_eq(tg_tensor_dim(tg_safetensors_find(f, "empty"), 1), 3);
    ck_assert_str_eq(tg_safetensors_metadata(f, "epoch"), "3");
    ck_assert_str_eq(tg_safetensors_metadata(f, "note"), "line\nbreak \"q\"");
    ck_assert_ptr_nonnull(tg_safetensors_metadata(f, "tapegrad.crc32"));
    ck_assert_ptr_null(tg_safetensors_metadata(f, "nope"));
    ck_assert_int_eq(tg_safetensors_metadata_count(f), 3);
    ck_assert_str_eq(tg_safetensors_metadata_key(f, 0), "epoch");
    ck_assert_str_eq(tg_safetensors_metadata_value(f, 0), "3");
    tg_safetensors_free(f);
    tg_safetensors_free(NULL);

    // No tensors at all is a valid file too.
    ASSERT_OK(tg_safetensors_write(spath("empty.safetensors"), 0, NULL, NULL, NULL));
    f = tg_safetensors_read(spath("empty.safetensors"));
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(tg_safetensors_count(f), 0);
    tg_safetensors_free(f);
    // Writing over an existing file replaces it and leaves no temporary.
    ASSERT_OK(tg_safetensors_write(spath("x.safetensors"), 1, names, ts, NULL));
    ck_assert_int_eq(dir_entries(), 2);
    for (int i = 0; i < 4; i++)
        tg_tensor_free(ts[i]);
    drop_scratch();
}
END_TEST

START_TEST(test_st_accessor_errors)
{
    make_scratch();
    tg_tensor *a = tg_tensor_ones(TG_F32, TG_SHAPE(2));
    ASSERT_OK(tg_safetensors_write(spath("a.st"), 1, (const char *[]){"a"}, &a, NULL));
    tg_safetensors *f = tg_safetensors_read(spath("a.st"));
    ck_assert_ptr_nonnull(f);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_name(NULL, 0), TG_EINVAL,
                           "tg_safetensors_name: file is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_name(f, 1), TG_ERANGE,
                           "tg_safetensors_name: index 1 outside [0, 1)");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_tensor(f, -1), TG_ERANGE,
                           "tg_safetensors_tensor: index -1 outside [0, 1)");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_tensor(NULL, 0), TG_EINVAL, "file is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_find(f, "b"), TG_ERANGE,
                           "tg_safetensors_find: no tensor \"b\" in ");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_find(f, NULL), TG_EINVAL,
                           "tg_safetensors_find: name is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_find(NULL, "a"), TG_EINVAL, "file is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_metadata(NULL, "a"), TG_EINVAL,
                           "tg_safetensors_metadata: file is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_metadata(f, NULL), TG_EINVAL, "key is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_metadata_key(f, 5), TG_ERANGE,
                           "tg_safetensors_metadata_key: index 5 outside [0, 1)");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_metadata_value(NULL, 0), TG_EINVAL,
                           "tg_safetensors_metadata_value: file is NULL");
    ck_assert_int_eq(tg_safetensors_count(NULL), 0);
    ck_assert_int_eq(tg_safetensors_metadata_count(NULL), 0);
    tg_safetensors_free(f);
    tg_tensor_free(a);
    drop_scratch();
}
END_TEST

START_TEST(test_st_write_errors)
{
    make_scratch();
    tg_tensor *a = tg_tensor_ones(TG_F32, TG_SHAPE(2));
    tg_tensor *ts[] = {a, a};
    const char *p = spath("w.st");
    ASSERT_FRESH_FAIL(tg_safetensors_write(NULL, 1, (const char *[]){"a"}, ts, NULL), TG_EINVAL,
                      "tg_safetensors_write: path is NULL");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, -1, NULL, NULL, NULL), TG_EINVAL, "n is -1");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, NULL, ts, NULL), TG_EINVAL, "names is NULL");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"a"}, NULL, NULL), TG_EINVAL,
                      "tensors is NULL");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){NULL}, ts, NULL), TG_EINVAL,
                      "names[0] is NULL");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"a"}, (tg_tensor *[]){NULL},
                                           NULL), TG_EINVAL, "tensors[0] is NULL");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 2, (const char *[]){"a", "a"}, ts, NULL),
                      TG_EINVAL, "the name \"a\" is used twice");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){""}, ts, NULL), TG_EINVAL,
                      "names[0] is empty");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"__metadata__"}, ts, NULL),
                      TG_EINVAL, "safetensors reserves");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"a\xff"}, ts, NULL),
                      TG_EINVAL, "names[0] is not valid UTF-8");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"a"}, ts,
                                           (const char *[]){"k", NULL, NULL}),
                      TG_EINVAL, "metadata value for \"k\" is NULL");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"a"}, ts,
                                           (const char *[]){"k", "1", "k", "2", NULL}),
                      TG_EINVAL, "metadata key \"k\" is given twice");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"a"}, ts,
                                           (const char *[]){"tapegrad.crc32", "0", NULL}),
                      TG_EINVAL, "is tapegrad's own");
    ASSERT_FRESH_FAIL(tg_safetensors_write(p, 1, (const char *[]){"a"}, ts,
                                           (const char *[]){"k", "\xc3", NULL}),
                      TG_EINVAL, "metadata \"k\" is not valid UTF-8");
    ASSERT_FRESH_FAIL(tg_safetensors_write(spath("no/such/dir/w.st"), 1, (const char *[]){"a"},
                                           ts, NULL),
                      TG_EIO, "cannot create a temporary file in its directory");
    ck_assert_int_eq(dir_entries(), 0);
    tg_tensor_free(a);
    drop_scratch();
}
END_TEST

/* ==== safetensors: the reader never trusts the file ======================= */

static const float four[4] = {1, 2, 3, 4};

static const struct {
    const char *header;
    size_t data; /* bytes of data after the header (from `four`, zero-padded) */
    tg_status code;
    const char *msg;
} st_bad[] = {
    {"[]", 0, TG_EFORMAT, "does not start with '{'"},
    {"{\"a\":1}", 0, TG_EFORMAT, "tensor \"a\": expected an object, got number"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, TG_EFORMAT, "missing \"data_offsets\""},
    {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TG_EFORMAT, "missing \"dtype\""},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, TG_EFORMAT,
     "tensor \"a\": unexpected key \"x\""},
    {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TG_EFORMAT,
     "unknown dtype \"F33\""},
    {"{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TG_EFORMAT,
     "dtype is number, expected a string"},
    {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, TG_EDTYPE,
     "tensor \"a\" has dtype F16; tapegrad reads F32 and F64 only"},
    {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, TG_EDTYPE,
     "dtype BF16"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, TG_EFORMAT,
     "dimension 0 is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, TG_EFORMAT,
     "dimension 0 is not a non-negative integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, TG_EFORMAT,
     "shape is string, expected an array"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     TG_EFORMAT, "9 dimensions; tapegrad tensors have at most 8"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
     TG_EFORMAT, "header: offset 47: array longer than 9 elements"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
     TG_EFORMAT, "the shape's size overflows"},
    {"{\"a\":{\"dtype\":\"F64\",\"shape\":[9223372036854775807],\"data_offsets\":[0,4]}}", 4,
     TG_EFORMAT, "the shape's size overflows"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775807,2],\"data_offsets\":[0,0]}}",
     0, TG_EFORMAT, "the shape's size overflows"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, TG_EFORMAT,
     "data_offsets [0, 16] hold 16 bytes but shape 3 of F32 needs 12"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, TG_EFORMAT,
     "data_offsets must be an array of 2 integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, TG_EFORMAT,
     "data_offsets must be non-negative integers"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, TG_EFORMAT,
     "data_offsets [8, 4] end before they begin"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12, TG_EFORMAT,
     "data_offsets [0, 16] run past the end of the data (12 bytes)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, TG_EFORMAT,
     "overlaps"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, TG_EFORMAT,
     "bytes 4..8 of the data belong to no tensor (a gap before \"b\")"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, TG_EFORMAT,
     "bytes 0..4 of the data belong to no tensor (a gap before \"a\")"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, TG_EFORMAT,
     "bytes 4..12 of the data belong to no tensor (after the last one)"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, TG_EFORMAT,
     "duplicate key \"a\""},
    {"{\"__metadata__\":{\"k\":1}}", 0, TG_EFORMAT,
     "__metadata__ \"k\" is number; safetensors metadata values are strings"},
    {"{\"__metadata__\":[]}", 0, TG_EFORMAT, "__metadata__ is array, expected an object"},
    {"{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, TG_EFORMAT, "contains a NUL character"},
    {"{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TG_EFORMAT,
     "a tensor name contains a NUL character"},
    {"{\"__metadata__\":{\"tapegrad.crc32\":\"xyz\"}}", 0, TG_EFORMAT,
     "expected 8 lowercase hex digits"},
    {"{\"__metadata__\":{\"tapegrad.crc32\":\"00000001\"}}", 0, TG_EFORMAT,
     "the data's CRC-32 is 00000000 but the header says 00000001"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, TG_EFORMAT,
     "header: offset 54: expected a string key"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[[[1]]],\"data_offsets\":[0,4]}}", 4, TG_EFORMAT,
     "nesting deeper than 4 levels"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, TG_EFORMAT,
     "trailing characters after the JSON value"},
};

START_TEST(test_st_bad_headers)
{
    make_scratch();
    unsigned char data[16] = {0};
    memcpy(data, four, sizeof four);
    write_st(spath("bad.st"), st_bad[_i].header, data, st_bad[_i].data);
    tg_clear_error();
    ASSERT_NULL_FAIL(tg_safetensors_read(spath("bad.st")), st_bad[_i].code, st_bad[_i].msg);
    ck_assert_msg(strstr(tg_last_error(), "tg_safetensors_read: ") == tg_last_error() &&
                      strstr(tg_last_error(), "bad.st: "),
                  "%s", tg_last_error());
    drop_scratch();
}
END_TEST

START_TEST(test_st_bad_lengths)
{
    make_scratch();
    const char *p = spath("len.st");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(NULL), TG_EINVAL,
                           "tg_safetensors_read: path is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(spath("missing.st")), TG_EIO,
                           "missing.st: cannot open: No such file or directory");
    write_bytes(p, "\x02\0\0", 3);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(p), TG_EFORMAT,
                           "the file has 3 bytes, fewer than the 8 of the header length");
    // A claimed header of 2^63 bytes: refused before any allocation.
    write_bytes(p, "\0\0\0\0\0\0\0\x80{}", 10);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(p), TG_EFORMAT,
                           "header length 9223372036854775808 runs past the end of the file "
                           "(2 bytes after the length)");
    write_bytes(p, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(p), TG_EFORMAT, "runs past the end");
    write_bytes(p, "\x01\0\0\0\0\0\0\0{", 9);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(p), TG_EFORMAT,
                           "header length 1 is too short for a JSON object");
    // Over the 100 MB cap (the file is sparse: nothing that large is read).
    FILE *f = fopen(p, "wb");
    fwrite("\x01\xe1\xf5\x05\0\0\0\0{", 1, 9, f); // 100000001
    fseek(f, 100000010, SEEK_SET);
    fputc(0, f);
    fclose(f);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(p), TG_EFORMAT,
                           "header length 100000001 is above the limit of 100000000 bytes");
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(scratch), TG_EIO, "");
    drop_scratch();
}
END_TEST

START_TEST(test_st_flipped_bit)
{
    make_scratch();
    tg_tensor *a = tg_tensor_arange(TG_F32, 0, 64, 1);
    ASSERT_OK(tg_safetensors_write(spath("a.st"), 1, (const char *[]){"a"}, &a, NULL));
    size_t n;
    unsigned char *raw = read_bytes(spath("a.st"), &n);
    raw[n - 37] ^= 0x10; // a bit inside the data
    write_bytes(spath("b.st"), raw, n);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(spath("b.st")), TG_EFORMAT,
                           "the file is corrupt");
    ck_assert(strstr(tg_last_error(), "the data's CRC-32 is "));
    // A truncated file: the header no longer matches the size.
    write_bytes(spath("c.st"), raw, n - 1);
    ASSERT_FRESH_NULL_FAIL(tg_safetensors_read(spath("c.st")), TG_EFORMAT,
                           "run past the end of the data");
    free(raw);
    tg_tensor_free(a);
    drop_scratch();
}
END_TEST

/* Random damage to a valid file: every outcome is a clean success or a
 * clean error (ASan and the leak checker watch the rest). */
START_TEST(test_st_random_damage)
{
    make_scratch();
    tg_tensor *a = tg_tensor_arange(TG_F64, 0, 10, 1);
    tg_tensor *b = tg_tensor_arange(TG_F32, 0, 6, 1);
    tg_tensor *ts[] = {a, b};
    ASSERT_OK(tg_safetensors_write(spath("a.st"), 2, (const char *[]){"alpha", "beta"}, ts,
                                   (const char *[]){"k", "v", NULL}));
    size_t n;
    unsigned char *raw = read_bytes(spath("a.st"), &n);
    unsigned char *buf = malloc(n);
    tg_rng rng = tg_rng_seeded(9);
    int ok = 0, failed = 0;
    for (int trial = 0; trial < 1500; trial++) {
        memcpy(buf, raw, n);
        int flips = 1 + (int)tg_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)tg_rng_below(&rng, n);
            buf[at] = (unsigned char)tg_rng_below(&rng, 256);
        }
        size_t len = trial % 5 == 0 ? (size_t)tg_rng_below(&rng, n + 1) : n;
        write_bytes(spath("d.st"), buf, len);
        tg_clear_error();
        tg_safetensors *f = tg_safetensors_read(spath("d.st"));
        if (f)
            ok++;
        else
            failed++, ck_assert(tg_last_status() == TG_EFORMAT || tg_last_status() == TG_EDTYPE);
        tg_safetensors_free(f);
    }
    ck_assert_int_gt(failed, 1000);
    free(buf);
    free(raw);
    tg_tensor_free(a);
    tg_tensor_free(b);
    drop_scratch();
}
END_TEST

/* Many small tensors with 8-dim shapes: the densest real header there is
 * stays well within the parser's budget of 16 bytes per header byte. */
START_TEST(test_st_many_tensors)
{
    make_scratch();
    enum { N = 3000 };
    tg_tensor *t = tg_tensor_zeros(TG_F32, TG_SHAPE(1, 1, 1, 1, 1, 1, 1, 1));
    static char buf[N][8];
    const char *names[N];
    tg_tensor *ts[N];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "%x", i);
        names[i] = buf[i];
        ts[i] = t;
    }
    ASSERT_OK(tg_safetensors_write(spath("many.st"), N, names, ts, NULL));
    tg_safetensors *f = tg_safetensors_read(spath("many.st"));
    ck_assert_msg(f != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(f), N);
    ck_assert_ptr_eq(tg_safetensors_find(f, "bb8"), tg_safetensors_tensor(f, 0xbb8));
    tg_safetensors_free(f);
    tg_tensor_free(t);
    drop_scratch();
}
END_TEST

START_TEST(test_st_reference_layout)
{
    // A file laid out as the safetensors package writes it (sorted names,
    // header padded with spaces), written here byte by byte.
    make_scratch();
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[8,16]}}   ";
    unsigned char data[16];
    double d = -0.5;
    float fl[2] = {0.25f, 8.0f};
    memcpy(data, &d, 8);
    memcpy(data + 8, fl, 8);
    write_st(spath("r.st"), h, data, 16);
    tg_safetensors *f = tg_safetensors_read(spath("r.st"));
    ck_assert_msg(f != NULL, "%s", tg_last_error());
    ck_assert_str_eq(tg_safetensors_name(f, 0), "b");
    ck_assert(tg_tensor_item(tg_safetensors_find(f, "b")) == -0.5);
    double v;
    ASSERT_OK(tg_tensor_get_flat(tg_safetensors_find(f, "a"), 1, &v));
    ck_assert(v == 8.0);
    ck_assert_str_eq(tg_safetensors_metadata(f, "format"), "pt");
    tg_safetensors_free(f);
    drop_scratch();
}
END_TEST

/* ==== atomic writing ===================================================== */

static bool file_holds(const char *path, const char *name, double first)
{
    tg_safetensors *f = tg_safetensors_read(path);
    if (!f)
        return false;
    tg_tensor *t = tg_safetensors_find(f, name);
    double v = NAN;
    bool ok = t && tg_tensor_get_flat(t, 0, &v) == TG_OK && v == first;
    tg_safetensors_free(f);
    return ok;
}

START_TEST(test_st_io_failures_keep_old_file)
{
    make_scratch();
    const char *p = spath("ck.st");
    tg_tensor *old = tg_tensor_full(TG_F32, 0, NULL, 1);
    tg_tensor *neu = tg_tensor_full(TG_F32, 0, NULL, 2);
    ASSERT_OK(tg_safetensors_write(p, 1, (const char *[]){"old"}, &old, NULL));
    // Count the file-system calls of one save, then fail each in turn.
    tg__io_fail_after(-1, 0);
    ASSERT_OK(tg_safetensors_write(spath("count.st"), 1, (const char *[]){"new"}, &neu, NULL));
    long calls = tg__io_fail_after(-1, 0);
    unlink(spath("count.st"));
    ck_assert_int_ge(calls, 7); // open, 3 writes, fsync, close, rename, dir open, dir fsync
    for (long k = 0; k < calls; k++) {
        tg__io_fail_after(k, 0);
        tg_clear_error();
        tg_status st = tg_safetensors_write(p, 1, (const char *[]){"new"}, &neu, NULL);
        tg__io_fail_after(-1, 0);
        ck_assert_msg(st == TG_EIO, "call %ld: status %d: %s", k, st, tg_last_error());
        ck_assert(strstr(tg_last_error(), "tg_safetensors_write: "));
        ck_assert_int_eq(dir_entries(), 1); // no temporary file left behind
        if (strstr(tg_last_error(), "the new file is in place")) {
            // Only the directory sync after the rename can fail this way.
            ck_assert_int_ge(k, calls - 2);
            ck_assert(file_holds(p, "new", 2));
            ASSERT_OK(tg_safetensors_write(p, 1, (const char *[]){"old"}, &old, NULL));
        } else {
            ck_assert(strstr(tg_last_error(), "the previous file, if any, is unchanged"));
            ck_assert_msg(file_holds(p, "old", 1), "call %ld broke the old file", k);
        }
    }
    ASSERT_OK(tg_safetensors_write(p, 1, (const char *[]){"new"}, &neu, NULL));
    ck_assert(file_holds(p, "new", 2));
    tg_tensor_free(old);
    tg_tensor_free(neu);
    drop_scratch();
}
END_TEST

START_TEST(test_st_alloc_failures)
{
    make_scratch();
    const char *p = spath("m.st");
    tg_tensor *a = tg_tensor_arange(TG_F32, 0, 5, 1);
    tg_tensor *b = tg_tensor_arange(TG_F64, 0, 3, 1);
    tg_tensor *ts[] = {a, b};
    const char *names[] = {"a", "b"};
    const char *meta[] = {"k", "v", "k2", "v2", NULL};
    ASSERT_OK(tg_safetensors_write(p, 2, names, ts, meta));
    for (long k = 0;; k++) {
        tg__alloc_fail_after(k, 0);
        tg_status st = tg_safetensors_write(p, 2, names, ts, meta);
        tg__alloc_fail_after(-1, 0);
        if (st == TG_OK)
            break;
        ASSERT_FAIL(st, TG_ENOMEM, "out of memory");
        ck_assert(file_holds(p, "a", 0));
        ck_assert_int_eq(dir_entries(), 1);
    }
    for (long k = 0;; k++) {
        tg__alloc_fail_after(k, 0);
        tg_safetensors *f = tg_safetensors_read(p);
        tg__alloc_fail_after(-1, 0);
        if (f) {
            tg_safetensors_free(f);
            ck_assert_int_gt(k, 5);
            break;
        }
        ASSERT_FAIL(tg_last_status(), TG_ENOMEM, "out of memory");
    }
    tg_tensor_free(a);
    tg_tensor_free(b);
    drop_scratch();
}
END_TEST

/* A process killed at each file-system call of a save leaves the old file
 * loadable (a stale temporary may remain: nothing cleaned it up). */
START_TEST(test_st_kill_mid_save)
{
    make_scratch();
    const char *p = spath("k.st");
    tg_tensor *old = tg_tensor_full(TG_F64, TG_SHAPE(1000), 1);
    tg_tensor *neu = tg_tensor_full(TG_F64, TG_SHAPE(1000), 2);
    ASSERT_OK(tg_safetensors_write(p, 1, (const char *[]){"x"}, &old, NULL));
    for (long k = 0; k < 6; k++) { // up to the rename
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            tg__io_fail_after(k, 1);
            tg_safetensors_write(p, 1, (const char *[]){"x"}, &neu, NULL);
            _exit(0);
        }
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "call %ld", k);
        ck_assert_msg(file_holds(p, "x", 1), "killed at call %ld: old file damaged", k);
    }
    tg_tensor_free(old);
    tg_tensor_free(neu);
    drop_scratch();
}
END_TEST

/* ==== models ============================================================= */

static tg_model *small_cnn(tg_dtype dtype, uint64_t seed, int64_t units)
{
    tg_model *m = tg_model_new(dtype, TG_SHAPE(1, 6, 6), TG_SCHEME_KERAS, seed);
    ck_assert_ptr_nonnull(m);
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(3, 3, 3, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(units, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(4, TG_ACT_SOFTMAX)));
    return m;
}

static bool params_equal(const tg_model *a, const tg_model *b)
{
    int na, nb;
    tg_tensor *const *pa = tg_model_params(a, &na);
    tg_tensor *const *pb = tg_model_params(b, &nb);
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++) {
        size_t bytes = (size_t)tg_tensor_numel(pa[i]) * tg_dtype_size(tg_tensor_dtype(pa[i]));
        if (tg_tensor_numel(pa[i]) != tg_tensor_numel(pb[i]) ||
            memcmp(tg_tensor_data_const(pa[i]), tg_tensor_data_const(pb[i]), bytes) != 0)
            return false;
    }
    return true;
}

START_TEST(test_model_save_load)
{
    make_scratch();
    tg_model *a = small_cnn(TG_F32, 1, 8), *b = small_cnn(TG_F32, 2, 8);
    ck_assert(!params_equal(a, b));
    ASSERT_OK(tg_model_save(a, spath("m.safetensors")));
    tg_safetensors *f = tg_safetensors_read(spath("m.safetensors"));
    ck_assert_ptr_nonnull(f);
    const char *want[] = {"conv2d.weight", "conv2d.bias", "dense.weight", "dense.bias",
                          "dense_1.weight", "dense_1.bias"};
    ck_assert_int_eq(tg_safetensors_count(f), 6);
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(tg_safetensors_name(f, i), want[i]);
    ck_assert_int_eq(tg_tensor_dim(tg_safetensors_find(f, "dense.weight"), 0), 12); // (in, units)
    ck_assert_str_eq(tg_safetensors_metadata(f, "tapegrad.layers"),
                     "conv2d:Conv2D,max_pooling2d:MaxPooling2D,flatten:Flatten,dense:Dense,"
                     "dense_1:Dense");
    ck_assert_str_eq(tg_safetensors_metadata(f, "tapegrad.kind"), "model");
    tg_safetensors_free(f);
    ASSERT_OK(tg_model_load(b, spath("m.safetensors")));
    ck_assert(params_equal(a, b));
    tg_model_free(a);
    tg_model_free(b);
    drop_scratch();
}
END_TEST

START_TEST(test_model_load_errors)
{
    make_scratch();
    tg_model *a = small_cnn(TG_F32, 1, 8);
    ASSERT_OK(tg_model_save(a, spath("m.st")));
    tg_model *wide = small_cnn(TG_F32, 3, 9), *wide_copy = small_cnn(TG_F32, 3, 9);
    ASSERT_FRESH_FAIL(tg_model_load(wide, spath("m.st")), TG_ESHAPE,
                      "m.st: 'dense.weight' is 12x8 in the file but 12x9 in the model (and 2 "
                      "more differences)");
    ck_assert(params_equal(wide, wide_copy)); // untouched
    tg_model *f64 = small_cnn(TG_F64, 1, 8);
    ASSERT_FRESH_FAIL(tg_model_load(f64, spath("m.st")), TG_EDTYPE,
                      "'conv2d.weight' is float32 in the file but float64 in the model (and 5 "
                      "more differences)");
    tg_model *more = small_cnn(TG_F32, 1, 8);
    ASSERT_OK(tg_model_add(more, tg_layer_dense(2, TG_ACT_NONE)));
    ASSERT_FRESH_FAIL(tg_model_load(more, spath("m.st")), TG_EFORMAT,
                      "tg_model_load: ");
    ck_assert(strstr(tg_last_error(), "'dense_2.weight' is missing from the file (and 1 more "
                                      "difference)"));
    ASSERT_OK(tg_model_save(more, spath("more.st")));
    ASSERT_FRESH_FAIL(tg_model_load(a, spath("more.st")), TG_EFORMAT,
                      "the file has 'dense_2.weight', which the model does not (and 1 more "
                      "difference)");
    ASSERT_FRESH_FAIL(tg_model_load(a, spath("none.st")), TG_EIO,
                      "tg_model_load: tg_safetensors_read: ");
    ASSERT_FRESH_FAIL(tg_model_load(NULL, spath("m.st")), TG_EINVAL,
                      "tg_model_load: model is NULL");
    ASSERT_FRESH_FAIL(tg_model_load(a, NULL), TG_EINVAL, "tg_model_load: path is NULL");
    ASSERT_FRESH_FAIL(tg_model_save(NULL, "x"), TG_EINVAL, "tg_model_save: model is NULL");
    ASSERT_FRESH_FAIL(tg_model_save(a, NULL), TG_EINVAL, "tg_model_save: path is NULL");
    tg_model *empty = tg_model_new(TG_F32, TG_SHAPE(4), TG_SCHEME_KERAS, 0);
    ASSERT_OK(tg_model_add(empty, tg_layer_flatten()));
    ASSERT_FRESH_FAIL(tg_model_save(empty, spath("e.st")), TG_EINVAL,
                      "tg_model_save: the model has no parameters to save");
    // A model file is not a training checkpoint; the reverse works: the
    // model is taken from the checkpoint's "model." tensors.
    tg_train_state s = {.model = a};
    ASSERT_OK(tg_checkpoint_save(spath("t.st"), &s));
    tg_model *c = small_cnn(TG_F32, 5, 8);
    ASSERT_OK(tg_model_load(c, spath("t.st")));
    ck_assert(params_equal(a, c));
    ASSERT_FRESH_FAIL(tg_model_load(wide, spath("t.st")), TG_ESHAPE,
                      "'model.dense.weight' is 12x8 in the file but 12x9 in the model");
    tg_model_free(c);
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("m.st"), &s), TG_EFORMAT,
                      "not a training checkpoint (tapegrad.kind is \"model\"; use "
                      "tg_model_load)");
    tg_model_free(a);
    tg_model_free(wide);
    tg_model_free(wide_copy);
    tg_model_free(f64);
    tg_model_free(more);
    tg_model_free(empty);
    drop_scratch();
}
END_TEST

/* A normalised model: BatchNorm buffers are saved after the parameters of
 * their layer and restored; they never reach an optimizer. */
static tg_model *bn_model(uint64_t seed)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2, 4, 4), TG_SCHEME_PYTORCH, seed);
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(3, 3, 3, TG_ACT_NONE)));
    ASSERT_OK(tg_model_add(m, tg_layer_batchnorm2d(NULL)));
    ASSERT_OK(tg_model_add(m, tg_layer_global_avgpool2d()));
    ASSERT_OK(tg_model_add(m, tg_layer_batchnorm1d(NULL)));
    return m;
}

static bool buffers_equal(const tg_model *a, const tg_model *b)
{
    int na, nb;
    tg_tensor *const *pa = tg_model_buffers(a, &na);
    tg_tensor *const *pb = tg_model_buffers(b, &nb);
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (tg_tensor_numel(pa[i]) != tg_tensor_numel(pb[i]) ||
            memcmp(tg_tensor_data_const(pa[i]), tg_tensor_data_const(pb[i]),
                   (size_t)tg_tensor_numel(pa[i]) * sizeof(double)) != 0)
            return false;
    return true;
}

START_TEST(test_model_buffers_roundtrip)
{
    make_scratch();
    tg_model *a = bn_model(1), *b = bn_model(2);
    tg_rng rng = tg_rng_seeded(3);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(5, 2, 4, 4), 0, 1, &rng);
    tg_tape *tape = tg_tape_new();
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(tg_model_forward(a, x, false));
        tg_tape_reset(tape);
    }
    ck_assert(!buffers_equal(a, b));
    ASSERT_OK(tg_model_save(a, spath("bn.st")));
    tg_safetensors *f = tg_safetensors_read(spath("bn.st"));
    const char *want[] = {"conv2d.weight", "conv2d.bias", "batch_norm2d.weight",
                          "batch_norm2d.bias", "batch_norm2d.running_mean",
                          "batch_norm2d.running_var", "batch_norm1d.weight", "batch_norm1d.bias",
                          "batch_norm1d.running_mean", "batch_norm1d.running_var"};
    ck_assert_int_eq(tg_safetensors_count(f), 10);
    for (int i = 0; i < 10; i++)
        ck_assert_str_eq(tg_safetensors_name(f, i), want[i]);
    tg_safetensors_free(f);
    ASSERT_OK(tg_model_load(b, spath("bn.st")));
    ck_assert(params_equal(a, b) && buffers_equal(a, b));
    tg_model_set_training(a, false);
    tg_model_set_training(b, false);
    tg_tensor *ya = tg_model_forward(a, x, false), *yb = tg_model_forward(b, x, false);
    ck_assert_mem_eq(tg_tensor_data_const(ya), tg_tensor_data_const(yb), 5 * 3 * sizeof(double));
    // A file without the buffers does not fit.
    const char *names[] = {"conv2d.weight"};
    tg_tensor *ts[] = {tg_model_params(a, NULL)[0]};
    ASSERT_OK(tg_safetensors_write(spath("part.st"), 1, names, ts, NULL));
    ASSERT_FRESH_FAIL(tg_model_load(b, spath("part.st")), TG_EFORMAT,
                      "'conv2d.bias' is missing from the file");
    // A training checkpoint: the optimizer has the parameters only, the
    // buffers come back with the model.
    int np;
    tg_tensor *const *ps = tg_model_params(a, &np);
    ck_assert_int_eq(np, 6);
    tg_sgd_opts so = tg_sgd_defaults();
    so.momentum = 0.9;
    tg_optim *oa = tg_optim_sgd(ps, np, &so);
    tg_train_state sa = {.model = a, .optim = oa, .epoch = 2};
    ASSERT_OK(tg_checkpoint_save(spath("t.st"), &sa));
    tg_model *c = bn_model(9);
    tg_optim *oc = tg_optim_sgd(tg_model_params(c, NULL), np, &so);
    tg_train_state sc = {.model = c, .optim = oc};
    ASSERT_OK(tg_checkpoint_load(spath("t.st"), &sc));
    ck_assert(params_equal(a, c) && buffers_equal(a, c));
    f = tg_safetensors_read(spath("t.st"));
    ck_assert_ptr_nonnull(tg_safetensors_find(f, "model.batch_norm1d.running_var"));
    tg_safetensors_free(f);
    tg_optim_free(oa);
    tg_optim_free(oc);
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(a);
    tg_model_free(b);
    tg_model_free(c);
    drop_scratch();
}
END_TEST

/* A functional model saves under the names given at registration, once its
 * layers are built by a first call. */
static tg_model *functional_model(uint64_t seed, tg_tensor *x)
{
    tg_model *m = tg_model_new_functional(TG_F32, TG_SCHEME_KERAS, seed);
    tg_layer *ln = tg_model_register(m, "h0.ln", tg_layer_layernorm(1, 0, true));
    tg_layer *att = tg_model_register(m, "h0.attn", tg_layer_attention(2, NULL));
    tg_layer *bn = tg_model_register(m, "bn", tg_layer_batchnorm1d(NULL));
    if (x) {
        tg_tensor *h = tg_add(x, tg_layer_call(m, att, tg_layer_call(m, ln, x)));
        ck_assert_ptr_nonnull(tg_layer_call(m, bn, h));
    }
    return m;
}

START_TEST(test_functional_save_load)
{
    make_scratch();
    tg_rng rng = tg_rng_seeded(3);
    tg_tensor *x = tg_tensor_normal(TG_F32, TG_SHAPE(2, 4, 6), 0, 1, &rng);
    tg_tape *tape = tg_tape_new();
    tg_model *a = functional_model(1, x);
    ASSERT_OK(tg_model_save(a, spath("f.st")));
    tg_safetensors *f = tg_safetensors_read(spath("f.st"));
    ck_assert_int_eq(tg_safetensors_count(f), 2 + 8 + 4);
    ck_assert_str_eq(tg_safetensors_name(f, 2), "h0.attn.q_weight");
    ck_assert_str_eq(tg_safetensors_name(f, 9), "h0.attn.out_bias");
    ck_assert_str_eq(tg_safetensors_name(f, 13), "bn.running_var");
    ck_assert_str_eq(tg_safetensors_metadata(f, "tapegrad.layers"),
                     "h0.ln:LayerNormalization,h0.attn:MultiHeadAttention,bn:BatchNorm1D");
    tg_safetensors_free(f);
    // Unbuilt layers have nothing to load into.
    tg_model *cold = functional_model(2, NULL);
    ASSERT_FRESH_FAIL(tg_model_load(cold, spath("f.st")), TG_EFORMAT,
                      "the file has 'h0.ln.weight', which the model does not");
    tg_model *b = functional_model(2, x);
    ck_assert(!params_equal(a, b));
    ASSERT_OK(tg_model_load(b, spath("f.st")));
    ck_assert(params_equal(a, b));
    tg_model_free(a);
    tg_model_free(b);
    tg_model_free(cold);
    tg_tensor_free(x);
    tg_tape_free(tape);
    drop_scratch();
}
END_TEST

/* ==== resumable training ================================================== */

enum { N_SAMPLES = 37, N_FEAT = 5, N_CLASSES = 3, BATCH = 8 };

typedef struct run {
    tg_model *m;
    tg_optim *opt;
    tg_batcher *b;
    tg_tensor *x;
    int64_t labels[N_SAMPLES];
    tg_rng aug; /* a caller generator: adds noise to every batch */
} run;

static void run_init(run *r, uint64_t seed)
{
    tg_rng data = tg_rng_seeded(1234); // the same data in every run
    r->x = tg_tensor_uniform(TG_F32, TG_SHAPE(N_SAMPLES, N_FEAT), -1, 1, &data);
    for (int i = 0; i < N_SAMPLES; i++)
        r->labels[i] = (int64_t)tg_rng_below(&data, N_CLASSES);
    r->m = tg_model_new(TG_F32, TG_SHAPE(N_FEAT), TG_SCHEME_PYTORCH, seed);
    ASSERT_OK(tg_model_add(r->m, tg_layer_dense(16, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(r->m, tg_layer_dropout(0.25)));
    ASSERT_OK(tg_model_add(r->m, tg_layer_dense(N_CLASSES, TG_ACT_NONE)));
    int np;
    tg_tensor *const *ps = tg_model_params(r->m, &np);
    tg_adam_opts o = tg_adamw_defaults();
    o.lr = 0.01;
    r->opt = tg_optim_adamw(ps, np, &o);
    tg_schedule sc = tg_schedule_cosine(0.02, 9, 0.001);
    sc.warmup_steps = 2;
    ASSERT_OK(tg_optim_set_schedule(r->opt, &sc));
    r->b = tg_batcher_new(r->x, r->labels, N_SAMPLES, BATCH, true, seed + 100);
    r->aug = tg_rng_seeded(seed + 200);
}

static void run_free(run *r)
{
    tg_batcher_free(r->b);
    tg_optim_free(r->opt);
    tg_model_free(r->m);
    tg_tensor_free(r->x);
}

/* Up to max_batches batches of the current epoch (all of it when < 0). */
static void train_batches(run *r, int max_batches)
{
    tg_tape *tape = tg_tape_new();
    tg_tape *prev = tg_tape_set_current(tape);
    tg_tensor *xb;
    const int64_t *yb;
    int64_t count;
    for (int k = 0; (max_batches < 0 || k < max_batches) && tg_batcher_next(r->b, &xb, &yb, &count);
         k++) {
        float *px = tg_tensor_data(xb);
        for (int64_t i = 0; i < tg_tensor_numel(xb); i++)
            px[i] += (float)(0.01 * tg_rng_normal(&r->aug));
        tg_tensor *loss = tg_cross_entropy(tg_model_forward(r->m, xb, true), yb, TG_REDUCE_MEAN);
        ck_assert_msg(loss != NULL, "%s", tg_last_error());
        ASSERT_OK(tg_backward(loss));
        ASSERT_OK(tg_optim_step(r->opt));
        tg_optim_zero_grad(r->opt);
        tg_tape_reset(tape);
    }
    tg_tape_set_current(prev);
    tg_tape_free(tape);
}

static void train_epoch(run *r)
{
    train_batches(r, -1);
    tg_batcher_reset_epoch(r->b);
}

static tg_train_state state_of(run *r, int64_t epoch)
{
    return (tg_train_state){r->m, r->opt, r->b, &r->aug, epoch};
}

/* Trains `first` batches in a child process (a fresh address space that
 * exits after saving) and saves there. */
static void child_train_and_save(const char *path, int epochs, int extra_batches)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        run r;
        run_init(&r, 7);
        for (int e = 0; e < epochs; e++)
            train_epoch(&r);
        train_batches(&r, extra_batches);
        tg_train_state s = state_of(&r, epochs);
        tg_status st = tg_checkpoint_save(path, &s);
        run_free(&r);
        _exit(st == TG_OK ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(test_resume_bitwise)
{
    make_scratch();
    // Reference: 2 epochs without stopping.
    run ref;
    run_init(&ref, 7);
    train_epoch(&ref);
    train_epoch(&ref);

    // 1 epoch in another process, saved; loaded into objects made with other
    // seeds (so that nothing agrees by accident), then 1 more epoch.
    child_train_and_save(spath("t.safetensors"), 1, 0);
    run r;
    run_init(&r, 99);
    tg_train_state s = state_of(&r, -1);
    ASSERT_OK(tg_checkpoint_load(spath("t.safetensors"), &s));
    ck_assert_int_eq(s.epoch, 1);
    ck_assert_int_eq(tg_optim_step_count(r.opt), 5);
    train_epoch(&r);
    ck_assert(params_equal(ref.m, r.m));
    ck_assert_int_eq(tg_optim_step_count(r.opt), tg_optim_step_count(ref.opt));
    ck_assert(tg_optim_get_lr(r.opt) == tg_optim_get_lr(ref.opt));
    for (int i = 0; i < tg_optim_num_params(r.opt); i++) {
        tg_tensor *a = tg_optim_state(r.opt, i, "exp_avg_sq");
        tg_tensor *b = tg_optim_state(ref.opt, i, "exp_avg_sq");
        ck_assert(memcmp(tg_tensor_data(a), tg_tensor_data(b),
                         (size_t)tg_tensor_numel(a) * 4) == 0);
    }
    ck_assert(memcmp(&r.aug, &ref.aug, sizeof r.aug) == 0);
    ck_assert(memcmp(tg_model_rng(r.m), tg_model_rng(ref.m), sizeof(tg_rng)) == 0);
    run_free(&r);

    // Saved in the middle of the second epoch (after 2 of its 5 batches).
    child_train_and_save(spath("mid.safetensors"), 1, 2);
    run_init(&r, 55);
    s = state_of(&r, 0);
    ASSERT_OK(tg_checkpoint_load(spath("mid.safetensors"), &s));
    train_epoch(&r);
    ck_assert(params_equal(ref.m, r.m));
    run_free(&r);
    run_free(&ref);
    drop_scratch();
}
END_TEST

START_TEST(test_checkpoint_names)
{
    make_scratch();
    run r;
    run_init(&r, 7);
    train_batches(&r, 1);
    tg_train_state s = state_of(&r, 0);
    ASSERT_OK(tg_checkpoint_save(spath("t.st"), &s));
    tg_safetensors *f = tg_safetensors_read(spath("t.st"));
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(tg_safetensors_find(f, "model.dense.weight"));
    ck_assert_ptr_nonnull(tg_safetensors_find(f, "model.dense_1.bias"));
    ck_assert(tg_tensor_item(tg_safetensors_find(f, "optim.3.step")) == 1);
    ck_assert_ptr_nonnull(tg_safetensors_find(f, "optim.0.exp_avg"));
    ck_assert(tg_tensor_item(tg_safetensors_find(f, "optim.hparam.beta2")) == 0.999);
    ck_assert(tg_tensor_item(tg_safetensors_find(f, "optim.schedule.base_lr")) == 0.02);
    ck_assert_str_eq(tg_safetensors_metadata(f, "optim"), "adamw");
    ck_assert_str_eq(tg_safetensors_metadata(f, "optim.step_count"), "1");
    ck_assert_str_eq(tg_safetensors_metadata(f, "optim.schedule"), "cosine");
    ck_assert_str_eq(tg_safetensors_metadata(f, "optim.schedule.warmup_steps"), "2");
    ck_assert_str_eq(tg_safetensors_metadata(f, "batcher.pos"), "8");
    ck_assert_str_eq(tg_safetensors_metadata(f, "batcher.n"), "37");
    ck_assert_str_eq(tg_safetensors_metadata(f, "tapegrad.kind"), "training");
    tg_safetensors_free(f);
    run_free(&r);
    drop_scratch();
}
END_TEST

START_TEST(test_checkpoint_load_errors)
{
    make_scratch();
    run r;
    run_init(&r, 7);
    train_batches(&r, 2);
    tg_train_state s = state_of(&r, 4);
    ASSERT_OK(tg_checkpoint_save(spath("t.st"), &s));

    run fresh;
    run_init(&fresh, 8);
    run pristine;
    run_init(&pristine, 8);
    tg_train_state fs = state_of(&fresh, 0);
    tg_train_state t = fs;
    t.optim = NULL;
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), &t), TG_EINVAL,
                      "t.st: the checkpoint has optim state but state->optim is NULL");
    t = fs;
    t.batcher = NULL;
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), &t), TG_EINVAL,
                      "has batcher state but state->batcher is NULL");
    t = fs;
    t.rng = NULL;
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), &t), TG_EINVAL,
                      "has rng state but state->rng is NULL");
    // Another optimizer.
    int np;
    tg_tensor *const *ps = tg_model_params(fresh.m, &np);
    tg_optim *sgd = tg_optim_sgd(ps, np, NULL);
    t = fs;
    t.optim = sgd;
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), &t), TG_EFORMAT,
                      "the checkpoint's optimizer is adamw, state->optim is sgd");
    // No schedule attached.
    tg_optim *plain = tg_optim_adamw(ps, np, NULL);
    t.optim = plain;
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), &t), TG_EFORMAT,
                      "the checkpoint has a learning-rate schedule but state->optim not");
    // A batcher of another size.
    tg_batcher *b2 = tg_batcher_new(fresh.x, fresh.labels, N_SAMPLES, 4, true, 1);
    t = fs;
    t.batcher = b2;
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), &t), TG_EFORMAT,
                      "the checkpoint's batcher has n 37, batch_size 8, shuffle 1; "
                      "state->batcher has n 37, batch_size 4, shuffle 1");
    // A different model.
    tg_model *other = tg_model_new(TG_F32, TG_SHAPE(N_FEAT), TG_SCHEME_PYTORCH, 1);
    ASSERT_OK(tg_model_add(other, tg_layer_dense(15, TG_ACT_RELU)));
    t = fs;
    t.model = other;
    t.optim = NULL;
    t.batcher = NULL;
    t.rng = NULL;
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), &t), TG_EINVAL, "optim state");
    ASSERT_FRESH_FAIL(tg_checkpoint_load(NULL, &fs), TG_EINVAL,
                      "tg_checkpoint_load: path is NULL");
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("t.st"), NULL), TG_EINVAL,
                      "tg_checkpoint_load: state is NULL");
    ASSERT_FRESH_FAIL(tg_checkpoint_save(spath("t.st"), NULL), TG_EINVAL,
                      "tg_checkpoint_save: state is NULL");
    t.model = NULL;
    ASSERT_FRESH_FAIL(tg_checkpoint_save(spath("t.st"), &t), TG_EINVAL,
                      "tg_checkpoint_save: state->model is NULL");
    // A damaged hyperparameter: refused, and the optimizer keeps its own.
    {
        tg_safetensors *f = tg_safetensors_read(spath("t.st"));
        int n = tg_safetensors_count(f);
        const char **names = malloc((size_t)n * sizeof *names);
        tg_tensor **ts = malloc((size_t)n * sizeof *ts);
        for (int i = 0; i < n; i++) {
            names[i] = tg_safetensors_name(f, i);
            ts[i] = tg_safetensors_tensor(f, i);
        }
        tg_tensor_fill(tg_safetensors_find(f, "optim.hparam.beta2"), 1.5);
        const char *meta[64];
        int m = 0;
        for (int i = 0; i < tg_safetensors_metadata_count(f); i++) {
            if (strcmp(tg_safetensors_metadata_key(f, i), "tapegrad.crc32") == 0)
                continue;
            meta[m++] = tg_safetensors_metadata_key(f, i);
            meta[m++] = tg_safetensors_metadata_value(f, i);
        }
        meta[m] = NULL;
        ASSERT_OK(tg_safetensors_write(spath("bad.st"), n, names, ts, meta));
        free(names);
        free(ts);
        tg_safetensors_free(f);
    }
    ASSERT_FRESH_FAIL(tg_checkpoint_load(spath("bad.st"), &fs), TG_EFORMAT,
                      "'optim.hparam.beta2': tg_optim_set_hparam: beta2 1.5 outside [0, 1)");
    double beta1;
    ASSERT_OK(tg_optim_get_hparam(fresh.opt, "beta1", &beta1));
    ck_assert(beta1 == 0.9);
    // Nothing above changed the fresh objects.
    ck_assert(params_equal(fresh.m, pristine.m));
    ck_assert_int_eq(tg_optim_step_count(fresh.opt), 0);
    ck_assert(memcmp(&fresh.aug, &pristine.aug, sizeof fresh.aug) == 0);
    tg_batcher_state b1, bp;
    tg_batcher_get_state(fresh.b, &b1);
    tg_batcher_get_state(pristine.b, &bp);
    ck_assert(memcmp(&b1.epoch_rng, &bp.epoch_rng, sizeof b1.epoch_rng) == 0);
    ck_assert_int_eq(b1.pos, 0);
    ASSERT_OK(tg_checkpoint_load(spath("t.st"), &fs));
    ck_assert_int_eq(fs.epoch, 4);
    tg_model_free(other);
    tg_batcher_free(b2);
    tg_optim_free(sgd);
    tg_optim_free(plain);
    run_free(&fresh);
    run_free(&pristine);
    run_free(&r);
    drop_scratch();
}
END_TEST

START_TEST(test_checkpoint_alloc_and_io_failures)
{
    make_scratch();
    run r;
    run_init(&r, 7);
    train_batches(&r, 1);
    tg_train_state s = state_of(&r, 1);
    const char *p = spath("t.st");
    ASSERT_OK(tg_checkpoint_save(p, &s));
    for (long k = 0;; k++) {
        tg__alloc_fail_after(k, 0);
        tg_status st = tg_checkpoint_save(p, &s);
        tg__alloc_fail_after(-1, 0);
        if (st == TG_OK)
            break;
        ASSERT_FAIL(st, TG_ENOMEM, "out of memory");
    }
    for (long k = 0;; k++) {
        tg__alloc_fail_after(k, 0);
        tg_status st = tg_checkpoint_load(p, &s);
        tg__alloc_fail_after(-1, 0);
        if (st == TG_OK)
            break;
        ASSERT_FAIL(st, TG_ENOMEM, "out of memory");
    }
    for (long k = 0; k < 7; k++) {
        tg__io_fail_after(k, 0);
        tg_status st = tg_checkpoint_save(p, &s);
        tg__io_fail_after(-1, 0);
        ASSERT_FAIL(st, TG_EIO, "tg_checkpoint_save: ");
        ASSERT_OK(tg_checkpoint_load(p, &s));
    }
    run_free(&r);
    drop_scratch();
}
END_TEST

/* ==== the accessors checkpoints use ======================================= */

START_TEST(test_optim_hparams)
{
    tg_tensor *p = tg_tensor_zeros(TG_F64, TG_SHAPE(3));
    tg_tensor_set_requires_grad(p, true);
    tg_sgd_opts so = tg_sgd_defaults();
    so.momentum = 0.9;
    tg_optim *sgd = tg_optim_sgd(&p, 1, &so);
    const char *sgd_names[] = {"momentum", "dampening", "weight_decay", "nesterov"};
    for (int k = 0; k < 4; k++)
        ck_assert_str_eq(tg_optim_hparam_name(sgd, k), sgd_names[k]);
    ck_assert_ptr_null(tg_optim_hparam_name(sgd, 4));
    ck_assert_ptr_null(tg_optim_hparam_name(sgd, -1));
    ck_assert_ptr_null(tg_optim_hparam_name(NULL, 0));
    double v = -1;
    ASSERT_OK(tg_optim_get_hparam(sgd, "momentum", &v));
    ck_assert(v == 0.9);
    ASSERT_OK(tg_optim_set_hparam(sgd, "momentum", 0.5));
    ASSERT_OK(tg_optim_get_hparam(sgd, "momentum", &v));
    ck_assert(v == 0.5);
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(sgd, "momentum", 0), TG_ESTATE,
                      "tg_optim_set_hparam: momentum 0.5 -> 0 would add or drop the momentum "
                      "buffer");
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(sgd, "weight_decay", -1), TG_EINVAL,
                      "tg_optim_set_hparam: weight_decay -1 must be >= 0 and finite");
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(sgd, "nesterov", 0.5), TG_EINVAL,
                      "nesterov 0.5 must be 0 or 1");
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(sgd, "beta1", 0.5), TG_EINVAL,
                      "tg_optim_set_hparam: sgd has no hyperparameter \"beta1\" (it has: "
                      "momentum, dampening, weight_decay, nesterov)");
    v = 42;
    ASSERT_FRESH_FAIL(tg_optim_get_hparam(sgd, "lr", &v), TG_EINVAL,
                      "tg_optim_get_hparam: sgd has no hyperparameter \"lr\"");
    ck_assert(v == 42);
    ASSERT_FRESH_FAIL(tg_optim_get_hparam(NULL, "lr", &v), TG_EINVAL,
                      "tg_optim_get_hparam: opt is NULL");
    ASSERT_FRESH_FAIL(tg_optim_get_hparam(sgd, NULL, &v), TG_EINVAL, "name is NULL");
    ASSERT_FRESH_FAIL(tg_optim_get_hparam(sgd, "momentum", NULL), TG_EINVAL, "out is NULL");
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(NULL, "x", 1), TG_EINVAL,
                      "tg_optim_set_hparam: opt is NULL");
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(sgd, NULL, 1), TG_EINVAL, "name is NULL");
    ck_assert(!tg_optim_get_schedule(sgd, NULL));
    ck_assert(!tg_optim_get_schedule(NULL, NULL));
    tg_schedule sc = tg_schedule_step(0.1, 3, 0.5), got = {0};
    ASSERT_OK(tg_optim_set_schedule(sgd, &sc));
    ck_assert(tg_optim_get_schedule(sgd, &got));
    ck_assert(got.kind == TG_SCHED_STEP && got.step_size == 3 && got.gamma == 0.5);

    tg_optim *adam = tg_optim_adam(&p, 1, NULL);
    ASSERT_OK(tg_optim_set_hparam(adam, "form", TG_ADAM_KERAS));
    ASSERT_OK(tg_optim_get_hparam(adam, "form", &v));
    ck_assert(v == 1);
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(adam, "form", 2), TG_EINVAL, "form 2 must be 0");
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(adam, "eps", 0), TG_EINVAL,
                      "eps 0 must be > 0 and finite");
    tg_rmsprop_opts ro = tg_rmsprop_defaults();
    ro.centered = true;
    tg_optim *rms = tg_optim_rmsprop(&p, 1, &ro);
    ASSERT_OK(tg_optim_set_hparam(rms, "alpha", 0.5));
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(rms, "centered", 0), TG_ESTATE,
                      "centered 0 would add or drop a state buffer");
    ASSERT_FRESH_FAIL(tg_optim_set_hparam(rms, "momentum", 0.3), TG_ESTATE,
                      "momentum 0.3 would add or drop a state buffer");
    ASSERT_OK(tg_optim_get_hparam(rms, "momentum", &v));
    ck_assert(v == 0);
    ck_assert_str_eq(tg_optim_hparam_name(rms, 4), "centered");
    tg_optim_free(sgd);
    tg_optim_free(adam);
    tg_optim_free(rms);
    tg_tensor_free(p);
}
END_TEST

/* Changing Adam's betas after some steps must not reuse the cached powers
 * of the old ones: a switched to beta1 0.5 must then step exactly like b,
 * made with 0.5, from the same state. */
static void grad_step(tg_optim *opt, tg_tensor *p)
{
    tg_tape *tape = tg_tape_new();
    tg_tape *prev = tg_tape_set_current(tape);
    tg_tensor *w = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2), (const double[]){0.5, -1});
    ASSERT_OK(tg_backward(tg_sum(tg_mul(p, w), NULL, 0, false)));
    ASSERT_OK(tg_optim_step(opt));
    tg_optim_zero_grad(opt);
    tg_tensor_free(w);
    tg_tape_set_current(prev);
    tg_tape_free(tape);
}

START_TEST(test_optim_hparam_invalidates_cache)
{
    tg_tensor *p1 = tg_tensor_zeros(TG_F64, TG_SHAPE(2));
    tg_tensor *p2 = tg_tensor_zeros(TG_F64, TG_SHAPE(2));
    tg_tensor_set_requires_grad(p1, true);
    tg_tensor_set_requires_grad(p2, true);
    tg_adam_opts o = tg_adam_defaults();
    tg_optim *a = tg_optim_adam(&p1, 1, &o);
    o.beta1 = 0.5;
    tg_optim *b = tg_optim_adam(&p2, 1, &o);
    grad_step(a, p1);
    grad_step(b, p2);
    ASSERT_OK(tg_optim_set_hparam(a, "beta1", 0.5));
    ASSERT_OK(tg_tensor_copy_values(p1, p2));
    ASSERT_OK(tg_tensor_copy_values(tg_optim_state(a, 0, "exp_avg"),
                                    tg_optim_state(b, 0, "exp_avg")));
    ASSERT_OK(tg_tensor_copy_values(tg_optim_state(a, 0, "exp_avg_sq"),
                                    tg_optim_state(b, 0, "exp_avg_sq")));
    grad_step(a, p1);
    grad_step(b, p2);
    ck_assert(memcmp(tg_tensor_data(p1), tg_tensor_data(p2), 16) == 0);
    tg_optim_free(a);
    tg_optim_free(b);
    tg_tensor_free(p1);
    tg_tensor_free(p2);
}
END_TEST

START_TEST(test_batcher_state)
{
    tg_tensor *x = tg_tensor_arange(TG_F32, 0, 10, 1);
    tg_batcher *a = tg_batcher_new(x, NULL, 10, 3, true, 5);
    tg_batcher *b = tg_batcher_new(x, NULL, 10, 3, true, 6);
    tg_tensor *xa, *xb;
    tg_batcher_next(a, &xa, NULL, NULL);
    tg_batcher_state s;
    ASSERT_OK(tg_batcher_get_state(a, &s));
    ck_assert_int_eq(s.pos, 3);
    ck_assert_int_eq(s.n, 10);
    ASSERT_OK(tg_batcher_set_state(b, &s));
    for (int k = 0; k < 3; k++) {
        ck_assert(tg_batcher_next(a, &xa, NULL, NULL));
        ck_assert(tg_batcher_next(b, &xb, NULL, NULL));
        ck_assert(memcmp(tg_tensor_data(xa), tg_tensor_data(xb),
                         (size_t)tg_tensor_numel(xa) * 4) == 0);
    }
    tg_batcher_reset_epoch(a);
    tg_batcher_reset_epoch(b);
    ck_assert(tg_batcher_next(a, &xa, NULL, NULL) && tg_batcher_next(b, &xb, NULL, NULL));
    ck_assert(memcmp(tg_tensor_data(xa), tg_tensor_data(xb), 12) == 0);

    ASSERT_FRESH_FAIL(tg_batcher_get_state(NULL, &s), TG_EINVAL,
                      "tg_batcher_get_state: batcher is NULL");
    ASSERT_FRESH_FAIL(tg_batcher_get_state(a, NULL), TG_EINVAL, "out is NULL");
    ASSERT_FRESH_FAIL(tg_batcher_set_state(NULL, &s), TG_EINVAL,
                      "tg_batcher_set_state: batcher is NULL");
    ASSERT_FRESH_FAIL(tg_batcher_set_state(a, NULL), TG_EINVAL, "state is NULL");
    tg_batcher_state bad = s;
    bad.batch_size = 4;
    ASSERT_FRESH_FAIL(tg_batcher_set_state(a, &bad), TG_ESTATE,
                      "the state is for n 10, batch_size 4, shuffle 1; this batcher has n 10, "
                      "batch_size 3, shuffle 1");
    bad = s;
    bad.pos = 11;
    ASSERT_FRESH_FAIL(tg_batcher_set_state(a, &bad), TG_ESTATE, "pos 11 outside 0..10");
    ck_assert_ptr_null(tg_model_rng(NULL));
    tg_batcher_free(a);
    tg_batcher_free(b);
    tg_tensor_free(x);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_json_valid);
    tcase_add_test(tc, test_json_int64_edges);
    tcase_add_loop_test(tc, test_json_errors, 0, (int)(sizeof json_bad / sizeof json_bad[0]));
    tcase_add_test(tc, test_json_huge_number_text);
    tcase_add_test(tc, test_json_depth_and_budget);
    tcase_add_test(tc, test_json_many_keys_duplicate_last);
    tcase_add_test(tc, test_json_alloc_failures);
    tcase_add_test(tc, test_utf8_valid);
    suite_add_tcase(s, tc);

    tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_st_roundtrip);
    tcase_add_test(tc, test_st_accessor_errors);
    tcase_add_test(tc, test_st_write_errors);
    tcase_add_loop_test(tc, test_st_bad_headers, 0, (int)(sizeof st_bad / sizeof st_bad[0]));
    tcase_add_test(tc, test_st_bad_lengths);
    tcase_add_test(tc, test_st_flipped_bit);
    tcase_add_test(tc, test_st_random_damage);
    tcase_add_test(tc, test_st_reference_layout);
    tcase_add_test(tc, test_st_many_tensors);
    suite_add_tcase(s, tc);

    tc = tcase_create("atomic");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_st_io_failures_keep_old_file);
    tcase_add_test(tc, test_st_alloc_failures);
    tcase_add_test(tc, test_st_kill_mid_save);
    suite_add_tcase(s, tc);

    tc = tcase_create("model");
    tcase_add_test(tc, test_model_save_load);
    tcase_add_test(tc, test_model_load_errors);
    tcase_add_test(tc, test_model_buffers_roundtrip);
    tcase_add_test(tc, test_functional_save_load);
    suite_add_tcase(s, tc);

    tc = tcase_create("training");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resume_bitwise);
    tcase_add_test(tc, test_checkpoint_names);
    tcase_add_test(tc, test_checkpoint_load_errors);
    tcase_add_test(tc, test_checkpoint_alloc_and_io_failures);
    suite_add_tcase(s, tc);

    tc = tcase_create("accessors");
    tcase_add_test(tc, test_optim_hparams);
    tcase_add_test(tc, test_optim_hparam_invalidates_cache);
    tcase_add_test(tc, test_batcher_state);
    suite_add_tcase(s, tc);
    return s;
}

TG_CHECK_MAIN(checkpoint_suite)
