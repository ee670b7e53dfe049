/* check_tensor.c - tensors: constructors and their errors, shapes and
 * strides (0 to 8 dims, overflow), element access, copies and conversions,
 * requires_grad rules, the random generator's documented stream, and the
 * printer's exact text. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>
#include "tg_check.h"

START_TEST(test_constructors)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    tg_tensor *z = tg_tensor_zeros(dt, TG_SHAPE(2, 3, 4));
    ck_assert_int_eq(tg_tensor_ndim(z), 3);
    ck_assert_int_eq(tg_tensor_numel(z), 24);
    ck_assert_int_eq(tg_tensor_strides(z)[0], 12);
    ck_assert_int_eq(tg_tensor_strides(z)[2], 1);
    ck_assert_int_eq(tg_tensor_dim(z, -1), 4);
    ck_assert_int_eq(tg_tensor_dim(z, 3), -1);
    ck_assert_int_eq(tg_tensor_dtype(z), dt);
    ck_assert(!tg_tensor_on_tape(z));
    tg_tensor *o = tg_tensor_ones(dt, TG_SHAPE(5));
    tg_tensor *f = tg_tensor_full(dt, TG_SHAPE(2, 2), -2.5);
    tg_tensor *a = tg_tensor_arange(dt, 1, 2, 0.25);
    tg_tensor *d = tg_tensor_from_doubles(dt, TG_SHAPE(3), (const double[]){1, 2, 3});
    double v;
    ck_assert_int_eq(tg_tensor_get_flat(o, 4, &v), TG_OK);
    ck_assert_double_eq(v, 1);
    tg_tensor *sc = tg_tensor_full(dt, 0, NULL, 7);
    ck_assert_double_eq(tg_tensor_item(sc), 7);
    tg_tensor_free(sc);
    ck_assert_int_eq(tg_tensor_numel(a), 4);
    tg_tensor_get_flat(a, 3, &v);
    ck_assert_double_eq(v, 1.75);
    tg_tensor_get_flat(f, 3, &v);
    ck_assert_double_eq(v, -2.5);
    tg_tensor *c = tg_tensor_clone(d);
    ck_assert_ptr_ne(tg_tensor_data(c), tg_tensor_data(d));
    tg_tensor *c2 = tg_tensor_clone_as(d, _i ? TG_F64 : TG_F32);
    tg_tensor_get_flat(c2, 2, &v);
    ck_assert_double_eq(v, 3);
    tg_tensor *all[] = {z, o, f, a, d, c, c2};
    for (int i = 0; i < 7; i++)
        tg_tensor_free(all[i]);
}
END_TEST

START_TEST(test_from_data_and_dims)
{
    float raw[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *t = tg_tensor_from_data(TG_F32, TG_SHAPE(3, 2), raw);
    raw[0] = 100; // copied, not borrowed
    double v;
    ck_assert_int_eq(tg_tensor_get(t, (const int64_t[]){2, 1}, &v), TG_OK);
    ck_assert_double_eq(v, 6);
    ck_assert_int_eq(tg_tensor_get(t, (const int64_t[]){0, 0}, &v), TG_OK);
    ck_assert_double_eq(v, 1);
    ck_assert_int_eq(tg_tensor_set(t, (const int64_t[]){1, 0}, -1), TG_OK);
    ck_assert_double_eq(((float *)tg_tensor_data(t))[2], -1);
    tg_tensor *s = tg_tensor_zeros(TG_F64, 0, NULL); // scalar
    ck_assert_int_eq(tg_tensor_numel(s), 1);
    int64_t eight[8] = {1, 2, 1, 2, 1, 2, 1, 2};
    tg_tensor *e = tg_tensor_zeros(TG_F64, 8, eight);
    ck_assert_int_eq(tg_tensor_numel(e), 16);
    tg_tensor *empty = tg_tensor_zeros(TG_F64, TG_SHAPE(0, 3));
    ck_assert_int_eq(tg_tensor_numel(empty), 0);
    tg_tensor *all[] = {t, s, e, empty};
    for (int i = 0; i < 4; i++)
        tg_tensor_free(all[i]);
}
END_TEST

START_TEST(test_constructor_errors)
{
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros(TG_F32, 9, nine), TG_EINVAL, "ndim 9 outside 0..8");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros(TG_F32, TG_SHAPE(2, -3)), TG_EINVAL,
                     "dimension 1 is negative");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros(TG_F32, TG_SHAPE(1LL << 40, 1LL << 40)), TG_ERANGE,
                     "overflows");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros((tg_dtype)7, TG_SHAPE(2)), TG_EINVAL, "invalid dtype");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros(TG_F32, 2, NULL), TG_EINVAL, "shape is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_from_data(TG_F32, TG_SHAPE(2), NULL), TG_EINVAL,
                           "data is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_arange(TG_F32, 0, 1, 0), TG_EINVAL, "step != 0");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F32, TG_SHAPE(2), 0, 1, NULL), TG_EINVAL,
                     "rng is NULL");
    tg_rng rng = tg_rng_seeded(1);
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F32, TG_SHAPE(2), 1, 0, &rng), TG_EINVAL,
                     "low <= high");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_normal(TG_F32, TG_SHAPE(2), 0, -1, &rng), TG_EINVAL,
                           "std >= 0");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_clone(NULL), TG_EINVAL, "input 0 is NULL");
    tg_tensor *t = tg_tensor_zeros(TG_F32, TG_SHAPE(2, 2));
    double v = 42;
    tg_clear_error();
    ck_assert_int_eq(tg_tensor_get(t, (const int64_t[]){2, 0}, &v), TG_ERANGE);
    ck_assert_double_eq(v, 42); // untouched on failure
    ck_assert(strstr(tg_last_error(), "index 2 out of range for dimension 0 of size 2"));
    ck_assert_int_eq(tg_tensor_set_flat(t, 4, 1), TG_ERANGE);
    ck_assert_int_eq(tg_tensor_get(NULL, (const int64_t[]){0}, &v), TG_EINVAL);
    ck_assert(isnan(tg_tensor_item(t)));
    ck_assert(strstr(tg_last_error(), "has 4 elements, not 1"));
    tg_tensor *u = tg_tensor_zeros(TG_F32, TG_SHAPE(3));
    ck_assert_int_eq(tg_tensor_copy_values(t, u), TG_ESHAPE);
    tg_tensor_free(t);
    tg_tensor_free(u);
    tg_tensor_free(NULL);
}
END_TEST

START_TEST(test_requires_grad_and_ownership)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_ones(TG_F32, TG_SHAPE(2));
    ck_assert(!tg_tensor_requires_grad(x));
    ck_assert_int_eq(tg_tensor_set_requires_grad(x, true), TG_OK);
    ck_assert_ptr_null(tg_tensor_grad(x));
    tg_tensor *y = tg_exp(x);
    ck_assert(tg_tensor_on_tape(y));
    ck_assert_int_eq(tg_tensor_set_requires_grad(y, false), TG_ESTATE);
    tg_tensor_free(y); // tape-owned: ignored, the tape releases it
    ck_assert_int_eq(tg_backward(tg_sum(y, NULL, 0, false)), TG_OK);
    ck_assert_ptr_nonnull(tg_tensor_grad(x));
    ck_assert(!tg_tensor_on_tape(tg_tensor_grad(x))); // a caller tensor's grad is its own
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_rng_stream)
{
    // xoshiro256** seeded by splitmix64(42), from an independent Python
    // implementation of the two published algorithms (Blackman & Vigna):
    //   splitmix64: x += 0x9e3779b97f4a7c15; z = x; z = (z ^ z>>30) * 0xbf58476d1ce4e5b9;
    //               z = (z ^ z>>27) * 0x94d049bb133111eb; return z ^ z>>31
    //   xoshiro256**: r = rotl(s1 * 5, 7) * 9; t = s1 << 17; s2 ^= s0; s3 ^= s1;
    //               s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45)
    // (all mod 2^64), run with /usr/bin/python3.
    const uint64_t state42[4] = {0xbdd732262feb6e95ULL, 0x28efe333b266f103ULL,
                                 0x47526757130f9f52ULL, 0x581ce1ff0e4ae394ULL};
    const uint64_t want[8] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL,
                              0xae17533239e499a1ULL, 0xecb8ad4703b360a1ULL,
                              0xfde6dc7fe2ec5e64ULL, 0xc50da53101795238ULL,
                              0xb82154855a65ddb2ULL, 0xd99a2743ebe60087ULL};
    tg_rng rng = tg_rng_seeded(42);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(rng.s[i], state42[i]);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(tg_rng_next_u64(&rng), want[i]);
    rng = tg_rng_seeded(0); // seed 0 is a valid seed (splitmix never gives an all-zero state)
    ck_assert_uint_eq(tg_rng_next_u64(&rng), 0x99ec5f36cb75f2b4ULL);
    ck_assert_uint_eq(tg_rng_next_u64(&rng), 0xbf6e1f784956452aULL);
    rng = tg_rng_seeded(42);
    ck_assert_double_eq(tg_rng_uniform(&rng), 0.08386297105988216);
    ck_assert_double_eq(tg_rng_uniform(&rng), 0.3789802506626686);
    rng = tg_rng_seeded(42);
    ck_assert_double_eq(tg_rng_uniform(&rng), (double)(want[0] >> 11) * 0x1.0p-53);
    // Statistics of uniform, normal and below.
    rng = tg_rng_seeded(7);
    double su = 0, sn = 0, sn2 = 0;
    int counts[3] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = tg_rng_uniform(&rng), n = tg_rng_normal(&rng);
        ck_assert(u >= 0 && u < 1);
        su += u;
        sn += n;
        sn2 += n * n;
        counts[tg_rng_below(&rng, 3)]++;
    }
    ck_assert_double_eq_tol(su / 1e5, 0.5, 0.005);
    ck_assert_double_eq_tol(sn / 1e5, 0, 0.01);
    ck_assert_double_eq_tol(sn2 / 1e5, 1, 0.02);
    for (int k = 0; k < 3; k++)
        ck_assert_int_gt(counts[k], 32500);
    ck_assert_uint_eq(tg_rng_below(&rng, 0), 0);
    ck_assert_uint_eq(tg_rng_below(&rng, 1), 0);
    for (int i = 0; i < 1000; i++) // a bound above 2^63: rejection still in range
        ck_assert_uint_lt(tg_rng_below(&rng, (1ULL << 63) + 12345), (1ULL << 63) + 12345);
    // Same seed, same tensor.
    tg_rng r1 = tg_rng_seeded(5), r2 = tg_rng_seeded(5);
    tg_tensor *a = tg_tensor_normal(TG_F32, TG_SHAPE(50), 1, 2, &r1);
    tg_tensor *b = tg_tensor_normal(TG_F32, TG_SHAPE(50), 1, 2, &r2);
    ck_assert_mem_eq(tg_tensor_data(a), tg_tensor_data(b), 50 * sizeof(float));
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_print_format)
{
    tg_tensor *m = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 2), (const double[]){1, -2, 3, 4});
    char buf[256];
    int n = tg_tensor_format(m, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor([[ 1.0000, -2.0000],\n"
                          "        [ 3.0000,  4.0000]], dtype=float64)");
    ck_assert_int_eq(n, (int)strlen(buf));
    tg_tensor_set_requires_grad(m, true);
    tg_tensor_format(m, buf, sizeof buf);
    ck_assert(strstr(buf, "requires_grad=true"));
    tg_tensor *s = tg_tensor_full(TG_F32, 0, NULL, 0.5);
    tg_tensor_format(s, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor(0.5000, dtype=float32)");
    tg_tensor *small = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2), (const double[]){1e-7, 2});
    tg_tensor_format(small, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor([1.0000e-07, 2.0000e+00], dtype=float64)");
    tg_tensor *big = tg_tensor_arange(TG_F32, 0, 2000, 1);
    n = tg_tensor_format(big, buf, sizeof buf);
    ck_assert(strstr(buf, "1999.0000]"));
    ck_assert(strstr(buf, "..."));
    // A summarised 3-D tensor: blocks are separated by a blank line, and so is
    // the "..." that stands for the hidden ones (numpy's layout).
    tg_tensor *cube = tg_tensor_zeros(TG_F32, TG_SHAPE(8, 10, 20));
    char text[16384];
    tg_tensor_format(cube, text, sizeof text);
    ck_assert_msg(strstr(text, "]],\n\n        ...,\n\n        [["), "%s", text);
    ck_assert_msg(strstr(text, "],\n         ...,\n         ["), "%s", text);
    tg_tensor_free(cube);
    // Truncation: snprintf semantics.
    char tiny[8];
    n = tg_tensor_format(m, tiny, sizeof tiny);
    ck_assert_int_eq(strlen(tiny), 7);
    ck_assert_int_gt(n, 7);
    ck_assert_int_eq(tg_tensor_print(NULL, stdout), TG_EINVAL);
    tg_tensor *all[] = {m, s, small, big};
    for (int i = 0; i < 4; i++)
        tg_tensor_free(all[i]);
}
END_TEST

START_TEST(test_print_summarised_exact)
{
    // More than 1000 elements: 3 entries at each end of every long dimension.
    static char buf[4096];
    tg_tensor *a = tg_tensor_arange(TG_F32, 0, 2000, 1);
    int n = tg_tensor_format(a, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor([   0.0000,    1.0000,    2.0000, ..., 1997.0000, 1998.0000, "
                          "1999.0000], dtype=float32)");
    ck_assert_int_eq(n, (int)strlen(buf));
    double v[1600];
    for (int i = 0; i < 1600; i++)
        v[i] = i;
    tg_tensor *m = tg_tensor_from_doubles(TG_F64, TG_SHAPE(40, 40), v);
    n = tg_tensor_format(m, buf, sizeof buf);
    ck_assert_str_eq(buf,
        "tensor([[   0.0000,    1.0000,    2.0000, ...,   37.0000,   38.0000,   39.0000],\n"
        "        [  40.0000,   41.0000,   42.0000, ...,   77.0000,   78.0000,   79.0000],\n"
        "        [  80.0000,   81.0000,   82.0000, ...,  117.0000,  118.0000,  119.0000],\n"
        "        ...,\n"
        "        [1480.0000, 1481.0000, 1482.0000, ..., 1517.0000, 1518.0000, 1519.0000],\n"
        "        [1520.0000, 1521.0000, 1522.0000, ..., 1557.0000, 1558.0000, 1559.0000],\n"
        "        [1560.0000, 1561.0000, 1562.0000, ..., 1597.0000, 1598.0000, 1599.0000]], "
        "dtype=float64)");
    // NULL buffer of size 0: just the length, like snprintf.
    ck_assert_int_eq(tg_tensor_format(m, NULL, 0), n);
    // 3-D: blocks separated by a blank line; small tensors are printed whole.
    tg_tensor *c = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 1, 2), (const double[]){1, 2, 3, 4});
    tg_tensor_format(c, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor([[[1.0000, 2.0000]],\n\n"
                          "        [[3.0000, 4.0000]]], dtype=float64)");
    // print writes the same text plus a newline.
    FILE *f = tmpfile();
    ck_assert_int_eq(tg_tensor_print(c, f), TG_OK);
    rewind(f);
    char back[256] = {0};
    size_t got = fread(back, 1, sizeof back - 1, f);
    fclose(f);
    ck_assert_uint_eq(got, strlen(buf) + 1);
    ck_assert(strncmp(back, buf, strlen(buf)) == 0 && back[got - 1] == '\n');
    // Scalars, empty tensors and non-finite values.
    tg_tensor *s = tg_tensor_full(TG_F64, 0, NULL, -3.25);
    tg_tensor_format(s, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor(-3.2500, dtype=float64)");
    tg_tensor *e = tg_tensor_zeros(TG_F32, TG_SHAPE(0));
    tg_tensor_format(e, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor([], shape=(0,), dtype=float32)");
    tg_tensor *e2 = tg_tensor_zeros(TG_F64, TG_SHAPE(0, 3));
    tg_tensor_format(e2, buf, sizeof buf);
    ck_assert_str_eq(buf, "tensor([], shape=(0, 3), dtype=float64)"); // as numpy shows it
    tg_tensor_free(e2);
    tg_tensor *nf = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3),
                                           (const double[]){NAN, INFINITY, -1});
    tg_tensor_format(nf, buf, sizeof buf);
    ck_assert(strstr(buf, "nan") && strstr(buf, "inf") && strstr(buf, "-1.0000"));
    ASSERT_FRESH_FAIL(tg_tensor_format(NULL, buf, sizeof buf), TG_EINVAL,
                      "tg_tensor_format: NULL tensor");
    ASSERT_FRESH_FAIL(tg_tensor_format(c, NULL, 8), TG_EINVAL, "tg_tensor_format: NULL buffer");
    ASSERT_FRESH_FAIL(tg_tensor_print(c, NULL), TG_EINVAL, "tg_tensor_print: NULL stream");
    // Issue 11 item 6: a stream that cannot be written is reported, not TG_OK.
    // A read-only stream fails at once; /dev/full only when the buffer is flushed.
    FILE *ro = tmpfile();
    ck_assert_ptr_nonnull(ro);
    char ro_path[64];
    snprintf(ro_path, sizeof ro_path, "/proc/self/fd/%d", fileno(ro));
    FILE *rd = fopen(ro_path, "r");
    if (rd) { // /proc may be missing; then only /dev/full is tried
        ASSERT_FRESH_FAIL(tg_tensor_print(c, rd), TG_EIO,
                          "tg_tensor_print: writing to the stream failed: ");
        fclose(rd);
    }
    fclose(ro);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        ASSERT_FRESH_FAIL(tg_tensor_print(m, full), TG_EIO,
                          "tg_tensor_print: writing to the stream failed: No space left");
        fclose(full);
    }
    tg_tensor *all[] = {a, m, c, s, e, nf};
    for (int i = 0; i < 6; i++)
        tg_tensor_free(all[i]);
}
END_TEST

START_TEST(test_status_strings)
{
    ck_assert_str_eq(tg_status_str(TG_OK), "ok");
    ck_assert_str_eq(tg_status_str(TG_ESHAPE), "shape mismatch");
    ck_assert_str_eq(tg_status_str((tg_status)-99), "unknown status");
    ck_assert_str_eq(tg_dtype_name(TG_F32), "float32");
    ck_assert_uint_eq(tg_dtype_size(TG_F64), 8);
    tg_clear_error();
    ck_assert_str_eq(tg_last_error(), "");
    ck_assert_int_eq(tg_last_status(), TG_OK);
}
END_TEST

/* ---- shapes: 0 to 8 dims, strides, overflow ---- */

START_TEST(test_shapes_and_strides)
{
    // A scalar: no dims, one element, any axis out of range, NULL index allowed.
    tg_tensor *s = tg_tensor_zeros(TG_F64, 0, NULL);
    ck_assert_int_eq(tg_tensor_ndim(s), 0);
    ck_assert_int_eq(tg_tensor_numel(s), 1);
    ck_assert_int_eq(tg_tensor_dim(s, 0), -1);
    ck_assert_int_eq(tg_tensor_dim(s, -1), -1);
    ck_assert_int_eq(tg_tensor_set(s, NULL, 2.5), TG_OK);
    double v = 0;
    ck_assert_int_eq(tg_tensor_get(s, NULL, &v), TG_OK);
    ck_assert_double_eq(v, 2.5);
    ck_assert_double_eq(tg_tensor_item(s), 2.5);
    // 8 dims, the maximum: row-major strides in elements.
    int64_t shape8[8] = {2, 3, 1, 4, 1, 2, 5, 1};
    const int64_t strides8[8] = {120, 40, 40, 10, 10, 5, 1, 1};
    tg_tensor *e = tg_tensor_ones(TG_F32, 8, shape8);
    ck_assert_int_eq(tg_tensor_ndim(e), 8);
    ck_assert_int_eq(tg_tensor_numel(e), 240);
    for (int d = 0; d < 8; d++) {
        ck_assert_int_eq(tg_tensor_shape(e)[d], shape8[d]);
        ck_assert_int_eq(tg_tensor_strides(e)[d], strides8[d]);
        ck_assert_int_eq(tg_tensor_dim(e, d - 8), shape8[d]);
    }
    int64_t last[8] = {1, 2, 0, 3, 0, 1, 4, 0};
    ck_assert_int_eq(tg_tensor_set(e, last, -7), TG_OK);
    ck_assert_int_eq(tg_tensor_get_flat(e, 239, &v), TG_OK);
    ck_assert_double_eq(v, -7);
    // An empty dimension is fine beside a large one: no elements, and strides
    // (zero dims count as 1) that stay representable as byte offsets.
    tg_tensor *z = tg_tensor_zeros(TG_F32, TG_SHAPE(0, 1LL << 57));
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(tg_tensor_numel(z), 0);
    ck_assert_int_eq(tg_tensor_dim(z, 1), 1LL << 57);
    ck_assert_int_eq(tg_tensor_strides(z)[0], 1LL << 57);
    // Errors: ndim outside 0..8 and products that overflow, for each constructor.
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    tg_rng rng = tg_rng_seeded(3);
    ASSERT_FRESH_NULL_FAIL(tg_tensor_ones(TG_F64, -1, NULL), TG_EINVAL,
                           "tg_tensor_ones: ndim -1 outside 0..8");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_full(TG_F64, 9, nine, 1), TG_EINVAL,
                           "tg_tensor_full: ndim 9 outside 0..8");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros(TG_F32, TG_SHAPE(1LL << 31, 1LL << 31, 4)), TG_ERANGE,
                           "tg_tensor_zeros: element count overflows at dimension 1");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_ones(TG_F64, TG_SHAPE(INT64_MAX, 2)), TG_ERANGE,
                           "tg_tensor_ones: element count overflows");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F64, TG_SHAPE(1LL << 40, 1LL << 40), 0, 1, &rng),
                           TG_ERANGE, "tg_tensor_uniform: element count overflows");
    // Issue 11 item 4: numel is 0 here, but the strides (1e24, 1e12, 1) overflowed
    // int64 (signed overflow, UB) before the strides got the same check as numel.
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros(TG_F32, TG_SHAPE(0, 1000000000000, 1000000000000)),
                           TG_ERANGE, "tg_tensor_zeros: strides overflow at dimension 2 of "
                           "empty shape 0x1000000000000x1000000000000");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_ones(TG_F64, TG_SHAPE(1LL << 62, 0)), TG_ERANGE,
                           "tg_tensor_ones: strides overflow at dimension 0");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_zeros(TG_F32, TG_SHAPE(0, 1LL << 62)), TG_ERANGE,
                           "tg_tensor_zeros: strides overflow at dimension 1");
    tg_tape *tape = tg_tape_new(); // tape tensors go through the same check
    ASSERT_FRESH_NULL_FAIL(tg_full(TG_F32, TG_SHAPE(3, 0, 1LL << 31, 1LL << 31), 0), TG_ERANGE,
                           "tg_full: strides overflow at dimension 3");
    tg_tape_free(tape);
    ASSERT_FRESH_NULL_FAIL(tg_tensor_normal(TG_F64, TG_SHAPE(3, -1), 0, 1, &rng), TG_EINVAL,
                           "tg_tensor_normal: dimension 1 is negative (-1)");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_from_doubles(TG_F64, TG_SHAPE(-2), (const double[]){1}),
                           TG_EINVAL, "tg_tensor_from_doubles: dimension 0 is negative");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_arange(TG_F32, 0, 1e300, 1), TG_ERANGE,
                           "tg_tensor_arange: 1e+300 elements is too many");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_arange(TG_F32, 0, INFINITY, 1), TG_EINVAL,
                           "tg_tensor_arange: need finite");
    tg_tensor_free(s);
    tg_tensor_free(e);
    tg_tensor_free(z);
}
END_TEST

/* ---- constructors' values ---- */

START_TEST(test_constructor_values)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    // arange: negative step, empty range, a fractional step that must give 10.
    tg_tensor *down = tg_tensor_arange(dt, 3, 0, -1);
    ck_assert_int_eq(tg_tensor_numel(down), 3);
    double v;
    for (int i = 0; i < 3; i++) {
        tg_tensor_get_flat(down, i, &v);
        ck_assert_double_eq(v, 3 - i);
    }
    tg_tensor *none = tg_tensor_arange(dt, 3, 0, 1);
    ck_assert_ptr_nonnull(none);
    ck_assert_int_eq(tg_tensor_numel(none), 0);
    ck_assert_int_eq(tg_tensor_ndim(none), 1);
    tg_tensor *tenths = tg_tensor_arange(dt, 0, 1, 0.1);
    ck_assert_int_eq(tg_tensor_numel(tenths), 10);
    // from_doubles converts; from_data copies raw values of its own dtype.
    const double third = 1.0 / 3.0;
    tg_tensor *d = tg_tensor_from_doubles(dt, TG_SHAPE(1), &third);
    tg_tensor_get_flat(d, 0, &v);
    ck_assert_double_eq(v, _i ? (double)(float)third : third);
    // uniform: every value in [low, high), mean near the middle; same seed, same values.
    tg_rng r1 = tg_rng_seeded(9), r2 = tg_rng_seeded(9);
    tg_tensor *u = tg_tensor_uniform(dt, TG_SHAPE(100, 100), -2, 6, &r1);
    double sum = 0;
    for (int64_t i = 0; i < 10000; i++) {
        tg_tensor_get_flat(u, i, &v);
        ck_assert(v >= -2 && v < 6);
        sum += v;
    }
    ck_assert_double_eq_tol(sum / 10000, 2, 0.1);
    // One generator number per element, in order: a second tensor from the same
    // seed repeats the first element, then the second.
    tg_tensor *u2 = tg_tensor_uniform(dt, TG_SHAPE(2), -2, 6, &r2);
    for (int i = 0; i < 2; i++) {
        double a, b;
        tg_tensor_get_flat(u, i, &a);
        tg_tensor_get_flat(u2, i, &b);
        ck_assert_double_eq(a, b);
    }
    tg_tensor_free(u2);
    // normal: mean and standard deviation of 10^4 draws.
    tg_rng r3 = tg_rng_seeded(10);
    tg_tensor *n = tg_tensor_normal(dt, TG_SHAPE(10000), 3, 0.5, &r3);
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < 10000; i++) {
        tg_tensor_get_flat(n, i, &v);
        s1 += v;
        s2 += v * v;
    }
    double mean = s1 / 10000, sd = sqrt(s2 / 10000 - mean * mean);
    ck_assert_double_eq_tol(mean, 3, 0.02);
    ck_assert_double_eq_tol(sd, 0.5, 0.02);
    tg_tensor *zero_sd = tg_tensor_normal(dt, TG_SHAPE(3), 1.5, 0, &r3);
    tg_tensor_get_flat(zero_sd, 2, &v);
    ck_assert_double_eq(v, 1.5);
    tg_tensor *all[] = {down, none, tenths, d, u, n, zero_sd};
    for (int i = 0; i < 7; i++)
        tg_tensor_free(all[i]);
}
END_TEST

/* tg_tensor_uniform documents [low, high). Rounding low + (high - low) * u to
 * float32 can reach high: seed 39061301's first draw is
 * u = 0x1.ffffffcb4862p-1 (Python: xoshiro256** above, (0xffffff96a43124f4 >> 11) * 2^-53
 * = 0.9999999754692834), which rounds to 1.0f. */
START_TEST(test_uniform_float32_excludes_high)
{
    tg_rng rng = tg_rng_seeded(39061301);
    double u = tg_rng_uniform(&rng);
    ck_assert_double_eq(u, 0.9999999754692834);
    rng = tg_rng_seeded(39061301);
    tg_tensor *t = tg_tensor_uniform(TG_F32, TG_SHAPE(1), 0, 1, &rng);
    double v = tg_tensor_item(t);
    ck_assert_msg(v < 1.0, "tg_tensor_uniform(float32, 0, 1) gave %.9g, outside [0, 1)", v);
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_clone_and_ownership)
{
    // A clone of a tape tensor is the caller's: it outlives the tape.
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 2), (const double[]){1, 2, 3, 4});
    tg_tensor_set_requires_grad(x, true);
    tg_tensor *y = tg_mul_scalar(x, 2);
    ck_assert(tg_tensor_on_tape(y));
    ck_assert_int_eq(tg_backward(tg_sum(y, NULL, 0, false)), TG_OK);
    tg_tensor *c = tg_tensor_clone(y);
    tg_tensor *c32 = tg_tensor_clone_as(x, TG_F32);
    ck_assert(!tg_tensor_on_tape(c));
    ck_assert(!tg_tensor_requires_grad(c)); // a plain leaf, no grad
    ck_assert(!tg_tensor_requires_grad(c32));
    ck_assert_ptr_null(tg_tensor_grad(c32));
    ck_assert_int_eq(tg_tensor_dtype(c32), TG_F32);
    tg_tape_free(tape);
    double v;
    ck_assert_int_eq(tg_tensor_get(c, (const int64_t[]){1, 1}, &v), TG_OK);
    ck_assert_double_eq(v, 8);
    ck_assert_int_eq(tg_tensor_get_flat(c32, 2, &v), TG_OK);
    ck_assert_double_eq(v, 3);
    ck_assert_int_eq(tg_tensor_get_flat(tg_tensor_grad(x), 3, &v), TG_OK); // x's grad survives
    ck_assert_double_eq(v, 2);
    tg_tensor_free(c);
    tg_tensor_free(c32);
    tg_tensor_free(x);
}
END_TEST

/* ---- element access ---- */

START_TEST(test_access_fill_copy)
{
    tg_dtype dt = _i ? TG_F32 : TG_F64;
    tg_tensor *t = tg_tensor_zeros(dt, TG_SHAPE(2, 3));
    ck_assert_int_eq(tg_tensor_set(t, (const int64_t[]){1, 2}, 0.1), TG_OK);
    ck_assert_int_eq(tg_tensor_set_flat(t, 1, -4), TG_OK);
    double v;
    ck_assert_int_eq(tg_tensor_get_flat(t, 5, &v), TG_OK);
    ck_assert_double_eq(v, _i ? (double)0.1f : 0.1); // stored in the tensor's dtype
    ck_assert_int_eq(tg_tensor_get(t, (const int64_t[]){0, 1}, &v), TG_OK);
    ck_assert_double_eq(v, -4);
    double all[6];
    ck_assert_int_eq(tg_tensor_to_doubles(t, all), TG_OK);
    ck_assert_double_eq(all[0], 0);
    ck_assert_double_eq(all[1], -4);
    // Out of range: status, message, and *out untouched.
    v = 99;
    ASSERT_FRESH_FAIL(tg_tensor_get_flat(t, 6, &v), TG_ERANGE,
                      "tg_tensor_get_flat: flat index 6 outside [0, 6)");
    ASSERT_FRESH_FAIL(tg_tensor_get_flat(t, -1, &v), TG_ERANGE, "flat index -1 outside [0, 6)");
    ASSERT_FRESH_FAIL(tg_tensor_set(t, (const int64_t[]){0, -1}, 1), TG_ERANGE,
                      "tg_tensor_set: index -1 out of range for dimension 1 of size 3");
    ASSERT_FRESH_FAIL(tg_tensor_get(t, NULL, &v), TG_EINVAL, "tg_tensor_get: NULL index");
    ASSERT_FRESH_FAIL(tg_tensor_get(t, (const int64_t[]){0, 0}, NULL), TG_EINVAL,
                      "tg_tensor_get: out is NULL");
    ASSERT_FRESH_FAIL(tg_tensor_get_flat(t, 0, NULL), TG_EINVAL, "tg_tensor_get_flat: out is NULL");
    ck_assert_double_eq(v, 99);
    // item: one element of any ndim; NaN otherwise.
    tg_tensor *one = tg_tensor_full(dt, TG_SHAPE(1, 1, 1), -0.5);
    ck_assert_double_eq(tg_tensor_item(one), -0.5);
    tg_clear_error();
    ck_assert(isnan(tg_tensor_item(t)));
    ASSERT_FAIL(tg_last_status(), TG_ESHAPE, "tg_tensor_item: tensor of shape 2x3 has 6 elements");
    // fill converts to the dtype.
    ck_assert_int_eq(tg_tensor_fill(t, 1.0 / 3.0), TG_OK);
    tg_tensor_get_flat(t, 4, &v);
    ck_assert_double_eq(v, _i ? (double)(float)(1.0 / 3.0) : 1.0 / 3.0);
    // copy_values: across dtypes (rounding to float32), onto itself, shape checked.
    tg_tensor *src = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3),
                                            (const double[]){1.0 / 3.0, 2, 1e-3, -7.25, 0.1, 5});
    ck_assert_int_eq(tg_tensor_copy_values(t, src), TG_OK);
    for (int i = 0; i < 6; i++) {
        double want, got;
        tg_tensor_get_flat(src, i, &want);
        tg_tensor_get_flat(t, i, &got);
        ck_assert_double_eq(got, _i ? (double)(float)want : want);
    }
    ck_assert_int_eq(tg_tensor_copy_values(t, t), TG_OK);
    tg_tensor *back = tg_tensor_zeros(TG_F64, TG_SHAPE(2, 3));
    ck_assert_int_eq(tg_tensor_copy_values(back, t), TG_OK); // float32 -> float64 is exact
    tg_tensor_get_flat(back, 0, &v);
    ck_assert_double_eq(v, _i ? (double)(float)(1.0 / 3.0) : 1.0 / 3.0);
    tg_tensor *wrong = tg_tensor_zeros(dt, TG_SHAPE(3, 2));
    ASSERT_FRESH_FAIL(tg_tensor_copy_values(wrong, src), TG_ESHAPE,
                      "tg_tensor_copy_values: dst 3x2 vs src 2x3");
    ASSERT_FRESH_FAIL(tg_tensor_copy_values(NULL, src), TG_EINVAL,
                      "tg_tensor_copy_values: NULL dst");
    ASSERT_FRESH_FAIL(tg_tensor_fill(NULL, 1), TG_EINVAL, "tg_tensor_fill: NULL tensor");
    tg_tensor *free_me[] = {t, one, src, back, wrong};
    for (int i = 0; i < 5; i++)
        tg_tensor_free(free_me[i]);
}
END_TEST

START_TEST(test_requires_grad_rules)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_ones(TG_F64, TG_SHAPE(2));
    ck_assert_int_eq(tg_tensor_set_requires_grad(x, true), TG_OK);
    ck_assert(tg_tensor_requires_grad(x));
    tg_tensor *y = tg_exp(x);
    ck_assert(tg_tensor_requires_grad(y)); // recorded: follows its input
    ASSERT_FRESH_FAIL(tg_tensor_set_requires_grad(y, false), TG_ESTATE,
                      "tg_tensor_set_requires_grad: tensor was made by op 'exp'");
    // A result computed with grad mode off was not recorded: it is a leaf.
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *c = tg_exp(x);
    tg_set_grad_enabled(prev);
    ck_assert(!tg_tensor_requires_grad(c));
    ck_assert_int_eq(tg_tensor_set_requires_grad(c, true), TG_OK);
    // A tape constant and a detached view are leaves too.
    tg_tensor *k = tg_full(TG_F64, TG_SHAPE(2), 3);
    ck_assert(!tg_tensor_requires_grad(k));
    ck_assert_int_eq(tg_tensor_set_requires_grad(k, true), TG_OK);
    tg_tensor *d = tg_detach(y);
    ck_assert(!tg_tensor_requires_grad(d));
    ck_assert_int_eq(tg_tensor_set_requires_grad(d, true), TG_OK);
    // Marking x false again: ops on it are no longer recorded.
    ck_assert_int_eq(tg_tensor_set_requires_grad(x, false), TG_OK);
    size_t before = tg_tape_size(tape);
    ck_assert(!tg_tensor_requires_grad(tg_exp(x)));
    ck_assert_uint_eq(tg_tape_size(tape), before);
    // zero_grad without a grad is a no-op; NULL is ignored.
    tg_tensor_zero_grad(x);
    tg_tensor_zero_grad(NULL);
    ck_assert_ptr_null(tg_tensor_grad(x));
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *make = tcase_create("constructors");
    tcase_add_loop_test(make, test_constructors, 0, 2);
    tcase_add_test(make, test_from_data_and_dims);
    tcase_add_test(make, test_constructor_errors);
    tcase_add_test(make, test_requires_grad_and_ownership);
    tcase_add_loop_test(make, test_constructor_values, 0, 2);
    tcase_add_test(make, test_clone_and_ownership);
    suite_add_tcase(s, make);
    TCase *shape = tcase_create("shapes");
    tcase_add_test(shape, test_shapes_and_strides);
    suite_add_tcase(s, shape);
    TCase *access = tcase_create("access");
    tcase_add_loop_test(access, test_access_fill_copy, 0, 2);
    suite_add_tcase(s, access);
    TCase *grad = tcase_create("requires_grad");
    tcase_add_test(grad, test_requires_grad_rules);
    suite_add_tcase(s, grad);
    TCase *rng = tcase_create("rng");
    tcase_add_test(rng, test_rng_stream);
    tcase_add_test(rng, test_uniform_float32_excludes_high);
    suite_add_tcase(s, rng);
    TCase *print = tcase_create("print");
    tcase_add_test(print, test_print_format);
    tcase_add_test(print, test_print_summarised_exact);
    tcase_add_test(print, test_status_strings);
    suite_add_tcase(s, print);
    return s;
}

TG_CHECK_MAIN(tensor_suite)
