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
    ASSERT_FRESH_NULL_FAIL(tg_tensor_from_data(TG_F32, TG_SHAPE(2), NULL), TG_EINVAL, "data is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_arange(TG_F32, 0, 1, 0), TG_EINVAL, "step != 0");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F32, TG_SHAPE(2), 0, 1, NULL), TG_EINVAL,
                     "rng is NULL");
    tg_rng rng = tg_rng_seeded(1);
    ASSERT_FRESH_NULL_FAIL(tg_tensor_uniform(TG_F32, TG_SHAPE(2), 1, 0, &rng), TG_EINVAL,
                     "low <= high");
    ASSERT_FRESH_NULL_FAIL(tg_tensor_normal(TG_F32, TG_SHAPE(2), 0, -1, &rng), TG_EINVAL, "std >= 0");
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
    // implementation of the two published algorithms.
    const uint64_t want[4] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL,
                              0xae17533239e499a1ULL, 0xecb8ad4703b360a1ULL};
    tg_rng rng = tg_rng_seeded(42);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(tg_rng_next_u64(&rng), want[i]);
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

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *make = tcase_create("constructors");
    tcase_add_loop_test(make, test_constructors, 0, 2);
    tcase_add_test(make, test_from_data_and_dims);
    tcase_add_test(make, test_constructor_errors);
    tcase_add_test(make, test_requires_grad_and_ownership);
    suite_add_tcase(s, make);
    TCase *rng = tcase_create("rng");
    tcase_add_test(rng, test_rng_stream);
    suite_add_tcase(s, rng);
    TCase *print = tcase_create("print");
    tcase_add_test(print, test_print_format);
    tcase_add_test(print, test_status_strings);
    suite_add_tcase(s, print);
    return s;
}

TG_CHECK_MAIN(tensor_suite)
