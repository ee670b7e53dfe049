/* check_tape.c - the tape and the engine: backward through compositions
 * (reuse, broadcasting, views, reductions), seeds and accumulation, the
 * functional tg_grad, no-grad scopes, released graphs, second derivatives
 * against closed forms, a Hessian-vector product against finite differences,
 * flat memory over 100,000 steps, the explain printer, user-defined ops and
 * gradcheck's own behaviour. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>
#include "tg_check.h"
#include "autograd/tape_internal.h"
#include "core/alloc.h"

static tg_tensor *param(tg_dtype dt, int nd, const int64_t *shape, const double *v)
{
    tg_tensor *t = tg_tensor_from_doubles(dt, nd, shape, v);
    tg_tensor_set_requires_grad(t, true);
    return t;
}

static double at(const tg_tensor *t, int64_t i)
{
    double v = NAN;
    tg_tensor_get_flat(t, i, &v);
    return v;
}

START_TEST(test_backward_composition)
{
    // loss = sum(x * x * w) + sum(x): x used three times, w (3,) broadcast over (2,3).
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2, 3), (const double[]){1, 2, 3, -1, 0.5, 2});
    tg_tensor *w = param(TG_F64, TG_SHAPE(3), (const double[]){2, -1, 0.5});
    tg_tensor *loss = tg_add(tg_sum(tg_mul(tg_mul(x, x), w), NULL, 0, false),
                             tg_sum(x, NULL, 0, false));
    ck_assert_int_eq(tg_backward(loss), TG_OK);
    const double xv[6] = {1, 2, 3, -1, 0.5, 2}, wv[3] = {2, -1, 0.5};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(at(tg_tensor_grad(x), i), 2 * xv[i] * wv[i % 3] + 1, 1e-14);
    for (int j = 0; j < 3; j++)
        ck_assert_double_eq_tol(at(tg_tensor_grad(w), j), xv[j] * xv[j] + xv[j + 3] * xv[j + 3],
                                1e-14);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_broadcast_both_sides)
{
    // (3,1) + (1,4) -> (3,4); each gradient sums over the other's axis.
    tg_tape *tape = tg_tape_new();
    tg_tensor *a = param(TG_F32, TG_SHAPE(3, 1), (const double[]){1, 2, 3});
    tg_tensor *b = param(TG_F32, TG_SHAPE(1, 4), (const double[]){1, 1, 1, 1});
    ck_assert_int_eq(tg_backward(tg_sum(tg_mul(tg_add(a, b), tg_add(a, b)), NULL, 0, false)),
                     TG_OK);
    ck_assert_int_eq(tg_tensor_ndim(tg_tensor_grad(a)), 2);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(at(tg_tensor_grad(a), i), 4 * 2 * (i + 2), 1e-5);
    for (int j = 0; j < 4; j++)
        ck_assert_double_eq_tol(at(tg_tensor_grad(b), j), 2 * (2 + 3 + 4), 1e-5);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_views_and_detach)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2, 2), (const double[]){1, 2, 3, 4});
    tg_tensor *r = tg_reshape(x, TG_SHAPE(4));
    ck_assert_ptr_eq(tg_tensor_data(r), tg_tensor_data(x)); // a view shares storage
    tg_tensor *d = tg_detach(x);
    ck_assert(!tg_tensor_requires_grad(d));
    tg_tensor *loss = tg_sum(tg_mul(r, tg_reshape(d, TG_SHAPE(4))), NULL, 0, false);
    ck_assert_int_eq(tg_backward(loss), TG_OK);
    for (int i = 0; i < 4; i++) // d is a constant: dloss/dx = d = x
        ck_assert_double_eq(at(tg_tensor_grad(x), i), i + 1);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_seed_accumulate_zero_grad)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(3), (const double[]){1, 2, 3});
    tg_tensor *y = tg_mul_scalar(x, 3);
    tg_tensor *seed = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), (const double[]){1, 10, 100});
    ck_assert_int_eq(tg_backward_ex(y, seed, TG_RETAIN_GRAPH), TG_OK);
    ck_assert_int_eq(tg_backward_ex(y, seed, 0), TG_OK); // accumulates
    ck_assert_double_eq(at(tg_tensor_grad(x), 2), 600);
    tg_tensor_zero_grad(x);
    ck_assert_double_eq(at(tg_tensor_grad(x), 2), 0);
    tg_tensor_free(seed);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_backward_errors)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(3), (const double[]){1, 2, 3});
    tg_tensor *c = tg_tensor_ones(TG_F64, TG_SHAPE(3));
    tg_tensor *loss = tg_sum(tg_exp(x), NULL, 0, false);
    ck_assert_int_eq(tg_backward(loss), TG_OK);
    ASSERT_FRESH_FAIL(tg_backward(loss), TG_ESTATE, "released by an earlier backward");
    ASSERT_FRESH_FAIL(tg_backward(tg_sum(c, NULL, 0, false)), TG_EINVAL, "does not require grad");
    ASSERT_FRESH_FAIL(tg_backward(tg_exp(x)), TG_ESHAPE, "pass a seed");
    tg_tensor *seed2 = tg_tensor_ones(TG_F64, TG_SHAPE(2));
    ASSERT_FRESH_FAIL(tg_backward_ex(tg_exp(x), seed2, 0), TG_ESHAPE, "seed shape 2 differs");
    tg_tensor_free(seed2);
    ASSERT_FRESH_FAIL(tg_backward(NULL), TG_EINVAL, "output is NULL");
    ASSERT_FRESH_FAIL(tg_tensor_set_requires_grad(tg_exp(x), true), TG_ESTATE, "only leaves");
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_functional_grad_and_no_grad)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){0.5, -1});
    tg_tensor *u = param(TG_F64, TG_SHAPE(2), (const double[]){1, 1});
    tg_tensor *y = tg_sum(tg_mul(tg_exp(x), x), NULL, 0, false); // d/dx = e^x (1 + x)
    tg_tensor *g[2];
    ASSERT_FRESH_FAIL(tg_grad(1, &y, NULL, 2, (tg_tensor *[]){x, u}, g, TG_RETAIN_GRAPH),
                  TG_EINVAL, "do not depend on inputs[1]");
    ck_assert_int_eq(tg_grad(1, &y, NULL, 2, (tg_tensor *[]){x, u}, g, TG_ALLOW_UNUSED), TG_OK);
    ck_assert_double_eq_tol(at(g[0], 0), exp(0.5) * 1.5, 1e-14);
    ck_assert_double_eq(at(g[1], 1), 0);
    ck_assert_ptr_null(tg_tensor_grad(x)); // .grad untouched by the functional form
    // No-grad: nothing recorded, results do not require grad.
    size_t before = tg_tape_size(tape);
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *z = tg_exp(tg_mul(x, x));
    tg_set_grad_enabled(prev);
    ck_assert(tg_grad_enabled());
    ck_assert(!tg_tensor_requires_grad(z));
    ck_assert_uint_eq(tg_tape_size(tape), before);
    tg_tensor_free(x);
    tg_tensor_free(u);
    tg_tape_free(tape);
}
END_TEST

/* ---- second order ---- */

START_TEST(test_second_derivatives_closed_form)
{
    tg_tape *tape = tg_tape_new();
    for (double v = -2; v <= 2; v += 0.5) {
        tg_tensor *x = param(TG_F64, 0, NULL, &v);
        tg_tensor *g, *h;
        tg_tensor *t = tg_tanh(x);
        ck_assert_int_eq(tg_grad(1, &t, NULL, 1, &x, &g, TG_CREATE_GRAPH), TG_OK);
        ck_assert_int_eq(tg_grad(1, &g, NULL, 1, &x, &h, 0), TG_OK);
        double th = tanh(v);
        ck_assert_double_eq_tol(tg_tensor_item(g), 1 - th * th, 1e-12);
        ck_assert_double_eq_tol(tg_tensor_item(h), -2 * th * (1 - th * th), 1e-12);
        tg_tensor *s = tg_sigmoid(x);
        ck_assert_int_eq(tg_grad(1, &s, NULL, 1, &x, &g, TG_CREATE_GRAPH), TG_OK);
        ck_assert_int_eq(tg_grad(1, &g, NULL, 1, &x, &h, 0), TG_OK);
        double sg = 1 / (1 + exp(-v));
        ck_assert_double_eq_tol(tg_tensor_item(h), sg * (1 - sg) * (1 - 2 * sg), 1e-12);
        tg_tensor_free(x);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
}
END_TEST

/* L(w) = sum((tanh(x W1 + b1) W2)^2) over a small batch; H v by double
 * backward against (grad(w + h v) - grad(w - h v)) / 2h. */
static tg_tensor *net_loss(tg_tensor *x, tg_tensor *const *p)
{
    tg_tensor *h = tg_tanh(tg_add(tg_matmul(x, p[0]), p[1]));
    tg_tensor *out = tg_matmul(h, p[2]);
    return tg_sum(tg_mul(out, out), NULL, 0, false);
}

START_TEST(test_hessian_vector_product)
{
    tg_rng rng = tg_rng_seeded(11);
    tg_tensor *x = tg_tensor_uniform(TG_F64, TG_SHAPE(5, 3), -1, 1, &rng);
    tg_tensor *p[3] = {tg_tensor_uniform(TG_F64, TG_SHAPE(3, 4), -1, 1, &rng),
                       tg_tensor_uniform(TG_F64, TG_SHAPE(4), -1, 1, &rng),
                       tg_tensor_uniform(TG_F64, TG_SHAPE(4, 2), -1, 1, &rng)};
    tg_tensor *v[3];
    for (int i = 0; i < 3; i++) {
        tg_tensor_set_requires_grad(p[i], true);
        v[i] = tg_tensor_uniform(TG_F64, tg_tensor_ndim(p[i]), tg_tensor_shape(p[i]), -1, 1,
                                 &rng);
    }
    tg_tape *tape = tg_tape_new();
    // H v = d/dp <grad L(p), v>
    tg_tensor *loss = net_loss(x, p), *g[3], *hv[3];
    ck_assert_int_eq(tg_grad(1, &loss, NULL, 3, p, g, TG_CREATE_GRAPH), TG_OK);
    tg_tensor *dot = NULL;
    for (int i = 0; i < 3; i++) {
        tg_tensor *term = tg_sum(tg_mul(g[i], v[i]), NULL, 0, false);
        dot = dot ? tg_add(dot, term) : term;
    }
    ck_assert_int_eq(tg_grad(1, &dot, NULL, 3, p, hv, 0), TG_OK);
    double *analytic[3];
    for (int i = 0; i < 3; i++) {
        analytic[i] = malloc(sizeof(double) * (size_t)tg_tensor_numel(p[i]));
        tg_tensor_to_doubles(hv[i], analytic[i]);
    }
    tg_tape_reset(tape);
    // Central differences of the gradient along v.
    const double h = 1e-5;
    double *grads[2][3];
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < 3; i++)
            for (int64_t k = 0; k < tg_tensor_numel(p[i]); k++)
                ((double *)tg_tensor_data(p[i]))[k] += (side ? -2 : 1) * h * at(v[i], k);
        tg_tensor *l = net_loss(x, p), *gg[3];
        ck_assert_int_eq(tg_grad(1, &l, NULL, 3, p, gg, 0), TG_OK);
        for (int i = 0; i < 3; i++) {
            grads[side][i] = malloc(sizeof(double) * (size_t)tg_tensor_numel(p[i]));
            tg_tensor_to_doubles(gg[i], grads[side][i]);
        }
        tg_tape_reset(tape);
    }
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < tg_tensor_numel(p[i]); k++) {
            double numeric = (grads[0][i][k] - grads[1][i][k]) / (2 * h);
            ck_assert_msg(fabs(analytic[i][k] - numeric) < 1e-6 * (1 + fabs(numeric)),
                          "param %d element %lld: %.12g vs %.12g", i, (long long)k,
                          analytic[i][k], numeric);
        }
    for (int i = 0; i < 3; i++) {
        free(analytic[i]);
        free(grads[0][i]);
        free(grads[1][i]);
        tg_tensor_free(p[i]);
        tg_tensor_free(v[i]);
    }
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

/* ---- memory ---- */

START_TEST(test_memory_flat_over_100k_steps)
{
    tg_rng rng = tg_rng_seeded(2);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(4, 2), -1, 1, &rng);
    tg_tensor *y = tg_tensor_uniform(TG_F32, TG_SHAPE(4, 1), -1, 1, &rng);
    tg_tensor *p[2] = {tg_tensor_uniform(TG_F32, TG_SHAPE(2, 8), -1, 1, &rng),
                       tg_tensor_uniform(TG_F32, TG_SHAPE(8, 1), -1, 1, &rng)};
    tg_tensor_set_requires_grad(p[0], true);
    tg_tensor_set_requires_grad(p[1], true);
    tg_tape *tape = tg_tape_new();
    size_t bytes_after_warmup = 0;
    for (int step = 0; step < 100000; step++) {
        tg_tensor *out = tg_matmul(tg_tanh(tg_matmul(x, p[0])), p[1]);
        tg_tensor *loss = tg_mean(tg_pow_scalar(tg_sub(out, y), 2), NULL, 0, false);
        ck_assert_int_eq(tg_backward(loss), TG_OK);
        for (int i = 0; i < 2; i++) {
            float *w = tg_tensor_data(p[i]), *g = tg_tensor_data(tg_tensor_grad(p[i]));
            for (int64_t k = 0; k < tg_tensor_numel(p[i]); k++)
                w[k] -= 0.01f * g[k];
            tg_tensor_zero_grad(p[i]);
        }
        tg_tape_reset(tape);
        ck_assert_uint_eq(tg_tape_size(tape), 0);
        if (step == 10)
            bytes_after_warmup = tg_tape_bytes(tape);
        if (step > 10)
            ck_assert_uint_eq(tg_tape_bytes(tape), bytes_after_warmup);
    }
    ck_assert_uint_gt(bytes_after_warmup, 0);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(p[0]);
    tg_tensor_free(p[1]);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_explain_prints_the_walk)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){1, 2});
    FILE *f = tmpfile();
    tg_tape_explain(tape, f);
    ck_assert_int_eq(tg_backward(tg_sum(tg_sigmoid(tg_mul_scalar(x, 2)), NULL, 0, false)), TG_OK);
    tg_tape_explain(tape, NULL);
    char text[4096] = {0};
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    ck_assert_uint_gt(n, 0);
    const char *want[] = {"[2] sum", "[1] sigmoid", "[0] mul_scalar", "grad out", "grad in[0]"};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(strstr(text, want[i]), "missing '%s' in:\n%s", want[i], text);
    fclose(f);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_tape_print_lists_nodes)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){1, 2});
    tg_tensor *c = tg_tensor_ones(TG_F64, TG_SHAPE(2));
    tg_tensor *y = tg_sum(tg_mul(tg_exp(x), c), NULL, 0, false);
    ck_assert_ptr_nonnull(y);
    FILE *f = tmpfile();
    ck_assert_int_eq(tg_tape_print(tape, f), TG_OK);
    char text[4096] = {0};
    rewind(f);
    ck_assert_uint_gt(fread(text, 1, sizeof text - 1, f), 0);
    const char *want[] = {"tape: 3 recorded ops", "[0] exp(leaf 2)", "[1] mul([0], constant 2)",
                          "[2] sum([1])", "tensor(10.1073"};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(strstr(text, want[i]), "missing '%s' in:\n%s", want[i], text);
    fclose(f);
    ASSERT_FRESH_FAIL(tg_tape_print(NULL, stdout), TG_EINVAL, "tg_tape_print: NULL tape");
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tape_free(tape);
}
END_TEST

/* ---- out of memory: every allocation that can fail is made to fail ---- */

/* A small CNN training step; returns its status. Every call checks what it
 * got, the way a careful user's code would. */
static tg_status cnn_step(void)
{
    tg_status s = TG_OK;
    tg_tape *tape = tg_tape_new();
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 8, 8), TG_SCHEME_KERAS, 1);
    tg_layer *layers[] = {tg_layer_conv2d(4, 3, 3, TG_ACT_RELU), tg_layer_maxpool2d(2),
                          tg_layer_flatten(), tg_layer_dropout(0.25),
                          tg_layer_dense(3, TG_ACT_SOFTMAX)};
    if (!tape || !m)
        s = tg_last_status();
    for (int i = 0; i < 5; i++)
        if (s == TG_OK)
            s = tg_model_add(m, layers[i]);
        else
            tg_layer_free(layers[i]);
    tg_tensor *x = s == TG_OK ? tg_tensor_ones(TG_F32, TG_SHAPE(2, 1, 8, 8)) : NULL;
    tg_optim *opt = NULL;
    if (s == TG_OK && !x)
        s = tg_last_status();
    if (s == TG_OK) {
        int n;
        tg_tensor *const *params = tg_model_params(m, &n);
        tg_adam_opts o = tg_adam_keras_defaults();
        opt = tg_optim_adam(params, n, &o);
        if (!opt)
            s = tg_last_status();
    }
    if (s == TG_OK) {
        tg_tensor *loss = tg_cross_entropy(tg_model_forward(m, x, true),
                                           (const int64_t[]){0, 2}, TG_REDUCE_MEAN);
        s = loss ? tg_backward(loss) : tg_last_status();
    }
    if (s == TG_OK)
        s = tg_optim_step(opt);
    tg_optim_free(opt);
    tg_tensor_free(x);
    tg_model_free(m);
    tg_tape_free(tape);
    return s;
}

static tg_status grad_of_grad(void)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_full(TG_F64, TG_SHAPE(3), 0.5);
    tg_status s = tape && x ? tg_tensor_set_requires_grad(x, true) : tg_last_status();
    tg_tensor *g = NULL, *h = NULL;
    if (s == TG_OK) {
        tg_tensor *y = tg_sum(tg_mul(tg_tanh(x), tg_exp(x)), NULL, 0, false);
        s = y ? tg_grad(1, &y, NULL, 1, &x, &g, TG_CREATE_GRAPH) : tg_last_status();
    }
    if (s == TG_OK) {
        tg_tensor *gs = tg_sum(g, NULL, 0, false);
        s = gs ? tg_grad(1, &gs, NULL, 1, &x, &h, 0) : tg_last_status();
    }
    tg_tensor_free(x);
    tg_tape_free(tape);
    return s;
}

START_TEST(test_out_of_memory_everywhere)
{
    tg_status (*scenarios[2])(void) = {cnn_step, grad_of_grad};
    for (int sc = 0; sc < 2; sc++) {
        tg__alloc_fail_after(-1, 0);
        ck_assert_int_eq(scenarios[sc](), TG_OK);
        // The n-th allocation fails (sticky: and all after it; else only that one).
        bool all_covered = false; // some sticky n let the whole scenario through
        for (int sticky = 0; sticky < 2; sticky++)
            for (long n = 0; n < 400; n++) {
                tg_clear_error();
                tg__alloc_fail_after(n, sticky);
                tg_status s = scenarios[sc]();
                tg__alloc_fail_after(-1, 0);
                ck_assert_msg(s == TG_OK || s == TG_ENOMEM,
                              "scenario %d, allocation %ld: status %d (%s)", sc, n, (int)s,
                              tg_last_error());
                if (s == TG_ENOMEM)
                    ck_assert_msg(strstr(tg_last_error(), "memory"), "%s", tg_last_error());
                all_covered |= sticky && s == TG_OK;
            }
        ck_assert_msg(all_covered, "scenario %d makes more than 400 allocations", sc);
    }
}
END_TEST

START_TEST(test_tape_lifecycle)
{
    tg_tape *a = tg_tape_new();
    ck_assert_ptr_eq(tg_tape_current(), a);
    tg_tape *b = tg_tape_new();
    ck_assert_ptr_eq(tg_tape_set_current(a), b);
    tg_tape_free(a); // freeing the current tape leaves none current
    ck_assert_ptr_null(tg_tape_current());
    tg_tape_free(b);
    tg_tape_free(NULL);
    tg_tape_reset(NULL);
}
END_TEST

/* ---- user ops and gradcheck itself ---- */

static tg_status cube_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    for (int64_t i = 0; i < tg_tensor_numel(in[0]); i++) {
        double v;
        tg_tensor_get_flat(in[0], i, &v);
        tg_tensor_set_flat(out, i, v * v * v);
    }
    return TG_OK;
}

static tg_status cube_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                               const bool *needs, tg_tensor **din, void *ctx)
{
    // d x^3 = 3 x^2; ctx != NULL makes it deliberately wrong (2 x^2).
    din[0] = tg_mul(dout, tg_mul_scalar(tg_mul(in[0], in[0]), ctx ? 2.0 : 3.0));
    return din[0] ? TG_OK : tg_last_status();
}

static const tg_op_def_user CUBE = {.name = "cube", .n_inputs = 1, .forward = cube_forward,
                                    .backward = cube_backward};

static tg_tensor *cube_fn(tg_tensor *const *x, int n, void *ctx)
{
    return tg_apply(&CUBE, 1, x, ctx);
}

START_TEST(test_user_op_checks)
{
    tg_rng rng = tg_rng_seeded(4);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(2, 3), -2, 2, &rng);
    tg_gradcheck_report r;
    ck_assert_int_eq(tg_gradcheck(cube_fn, NULL, 1, &x, NULL, &r), TG_OK);
    ck_assert(r.passed);
    ck_assert_int_eq(r.checked, 36);
    ck_assert_int_eq(tg_gradgradcheck(cube_fn, NULL, 1, &x, NULL, &r), TG_OK);
    int wrong = 1;
    ASSERT_FRESH_FAIL(tg_gradcheck(cube_fn, &wrong, 1, &x, NULL, &r), TG_EGRAD, "mismatch");
    ck_assert(!r.passed);
    ck_assert_int_eq(r.worst_input, 0);
    ck_assert(strstr(r.message, "input 0 element"));
    // Direction mode catches it too.
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.directions = 3;
    ck_assert_int_eq(tg_gradcheck(cube_fn, &wrong, 1, &x, &o, &r), TG_EGRAD);
    ck_assert_int_eq(tg_gradcheck(cube_fn, NULL, 1, &x, &o, &r), TG_OK);
    ck_assert_int_eq(r.checked, 3);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_user_op_errors)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_ones(TG_F32, TG_SHAPE(2));
    tg_op_def_user bad = CUBE;
    bad.backward = NULL;
    tg_clear_error();
    ck_assert_ptr_null(tg_apply(&bad, 1, &x, NULL));
    ck_assert(strstr(tg_last_error(), "incomplete"));
    ck_assert_ptr_null(tg_apply(&CUBE, 2, (tg_tensor *[]){x, x}, NULL));
    ck_assert(strstr(tg_last_error(), "takes 1 inputs"));
    ck_assert_ptr_null(tg_apply(&CUBE, 1, (tg_tensor *[]){NULL}, NULL));
    ASSERT_FRESH_FAIL(tg_gradcheck(NULL, NULL, 1, &x, NULL, NULL), TG_EINVAL, "need a function");
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

/* ---- the engine: reuse, rank-changing broadcasts, views, reductions ---- */

/* d(sum f(x))/dx through tg_grad on the current tape, as doubles in out. */
static void grad_of_sum(tg_tensor *y, tg_tensor *x, double *out)
{
    tg_tensor *loss = tg_sum(y, NULL, 0, false), *g;
    ck_assert_msg(loss, "%s", tg_last_error());
    ck_assert_int_eq(tg_grad(1, &loss, NULL, 1, &x, &g, 0), TG_OK);
    ck_assert_int_eq(tg_tensor_ndim(g), tg_tensor_ndim(x));
    ck_assert_int_eq(tg_tensor_numel(g), tg_tensor_numel(x));
    ck_assert_int_eq(tg_tensor_to_doubles(g, out), TG_OK);
}

START_TEST(test_reuse_many_times)
{
    tg_tape *tape = tg_tape_new();
    const double xv[3] = {0.5, -2, 3};
    tg_tensor *x = param(TG_F64, TG_SHAPE(3), xv);
    double g[3];
    grad_of_sum(tg_mul(tg_mul(x, x), x), x, g); // x*x*x: 3x^2
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(g[i], 3 * xv[i] * xv[i], 1e-14);
    grad_of_sum(tg_mul(x, x), x, g); // both inputs of one op are x: 2x
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(g[i], 2 * xv[i], 1e-14);
    // Five uses along different paths: x + x + 2x + x/x + exp(x)*x.
    tg_tensor *y = tg_add(tg_add(tg_add(x, x), tg_mul_scalar(x, 2)), tg_div(x, x));
    grad_of_sum(tg_add(y, tg_mul(tg_exp(x), x)), x, g);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(g[i], 4 + exp(xv[i]) * (1 + xv[i]), 1e-12);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_broadcast_rank_difference)
{
    // (4,) + (2,3,4): a's gradient sums the 6 rows of the weights c; b's is c.
    tg_tape *tape = tg_tape_new();
    double cv[24], bv[24];
    for (int i = 0; i < 24; i++) {
        cv[i] = i - 11.5;
        bv[i] = 0.25 * i;
    }
    tg_tensor *a = param(TG_F64, TG_SHAPE(4), (const double[]){1, 2, 3, 4});
    tg_tensor *b = param(TG_F64, TG_SHAPE(2, 3, 4), bv);
    tg_tensor *c = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3, 4), cv);
    tg_tensor *loss = tg_sum(tg_mul(tg_add(a, b), c), NULL, 0, false);
    ck_assert_int_eq(tg_backward(loss), TG_OK);
    ck_assert_int_eq(tg_tensor_ndim(tg_tensor_grad(a)), 1);
    for (int j = 0; j < 4; j++) {
        double want = 0;
        for (int r = 0; r < 6; r++)
            want += cv[4 * r + j];
        ck_assert_double_eq_tol(at(tg_tensor_grad(a), j), want, 1e-12);
    }
    for (int i = 0; i < 24; i++)
        ck_assert_double_eq(at(tg_tensor_grad(b), i), cv[i]);
    // (2,3,1) - (4,) -> (2,3,4): the first sums over the last axis, the second
    // over the first two, with a minus sign.
    tg_tensor *p = param(TG_F64, TG_SHAPE(2, 3, 1), (const double[]){1, 2, 3, 4, 5, 6});
    double g[6];
    grad_of_sum(tg_mul(tg_sub(p, a), c), p, g);
    for (int r = 0; r < 6; r++)
        ck_assert_double_eq_tol(g[r], cv[4 * r] + cv[4 * r + 1] + cv[4 * r + 2] + cv[4 * r + 3],
                                1e-12);
    double ga[4];
    grad_of_sum(tg_mul(tg_sub(p, a), c), a, ga);
    ck_assert_double_eq_tol(ga[0], -(cv[0] + cv[4] + cv[8] + cv[12] + cv[16] + cv[20]), 1e-12);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
    tg_tensor_free(p);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_views_and_reductions)
{
    tg_tape *tape = tg_tape_new();
    double xv[24], wv[24], g[24];
    for (int i = 0; i < 24; i++) {
        xv[i] = sin(i + 1.0); // distinct values, no ties
        wv[i] = 0.5 * i - 3;
    }
    tg_tensor *x = param(TG_F64, TG_SHAPE(2, 3, 4), xv);
    // flatten (a view): the gradient comes back in x's shape.
    tg_tensor *w12 = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 12), wv);
    tg_tensor *fl = tg_flatten(x, 1);
    ck_assert_ptr_eq(tg_tensor_data(fl), tg_tensor_data(x));
    grad_of_sum(tg_mul(fl, w12), x, g);
    for (int i = 0; i < 24; i++)
        ck_assert_double_eq(g[i], wv[i]);
    // sum over axis 1 with keepdim: (2,1,4); each x[i,j,k] gets w[i,0,k].
    tg_tensor *w8 = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 1, 4), wv);
    tg_tensor *s1 = tg_sum(x, (const int[]){1}, 1, true);
    ck_assert_int_eq(tg_tensor_ndim(s1), 3);
    ck_assert_int_eq(tg_tensor_dim(s1, 1), 1);
    grad_of_sum(tg_mul(s1, w8), x, g);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ck_assert_double_eq(g[12 * i + 4 * j + k], wv[4 * i + k]);
    // mean over axes (0, 2) without keepdim: (3,); each element gets v[j] / 8.
    tg_tensor *v3 = tg_tensor_from_doubles(TG_F64, TG_SHAPE(3), (const double[]){1, -2, 4});
    tg_tensor *m = tg_mean(x, (const int[]){0, -1}, 2, false);
    ck_assert_int_eq(tg_tensor_ndim(m), 1);
    grad_of_sum(tg_mul(m, v3), x, g);
    const double v3v[3] = {1, -2, 4};
    for (int i = 0; i < 24; i++)
        ck_assert_double_eq_tol(g[i], v3v[(i / 4) % 3] / 8, 1e-15);
    // max along the last axis: one-hot at each row's argmax.
    grad_of_sum(tg_max(x, (const int[]){-1}, 1, false), x, g);
    for (int r = 0; r < 6; r++) {
        int arg = 0;
        for (int k = 1; k < 4; k++)
            if (xv[4 * r + k] > xv[4 * r + arg])
                arg = k;
        for (int k = 0; k < 4; k++)
            ck_assert_double_eq(g[4 * r + k], k == arg ? 1 : 0);
    }
    // logsumexp along axis 2: the gradient is the softmax of each row.
    grad_of_sum(tg_logsumexp(x, (const int[]){2}, 1, true), x, g);
    for (int r = 0; r < 6; r++) {
        double z = 0;
        for (int k = 0; k < 4; k++)
            z += exp(xv[4 * r + k]);
        for (int k = 0; k < 4; k++)
            ck_assert_double_eq_tol(g[4 * r + k], exp(xv[4 * r + k]) / z, 1e-14);
    }
    // Ties in max: the gradient goes to the first maximal element only.
    tg_tensor *t = param(TG_F64, TG_SHAPE(2, 3), (const double[]){5, 1, 5, 2, 7, 7});
    double gt[6];
    grad_of_sum(tg_max(t, (const int[]){1}, 1, false), t, gt);
    const double want_t[6] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(gt[i], want_t[i]);
    grad_of_sum(tg_max(t, NULL, 0, false), t, gt);
    ck_assert_double_eq(gt[4], 1);
    ck_assert_double_eq(gt[5], 0);
    tg_tensor *free_me[] = {x, w12, w8, v3, t};
    for (int i = 0; i < 5; i++)
        tg_tensor_free(free_me[i]);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_grad_of_intermediate)
{
    // tg_grad may ask for the gradient at a recorded tensor; backward fills .grad
    // of leaves only.
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){0.3, -0.7});
    tg_tensor *h = tg_tanh(x);
    tg_tensor *y = tg_sum(tg_mul(h, h), NULL, 0, false);
    tg_tensor *gh;
    ck_assert_int_eq(tg_grad(1, &y, NULL, 1, &h, &gh, TG_RETAIN_GRAPH), TG_OK);
    ck_assert_double_eq_tol(at(gh, 1), 2 * tanh(-0.7), 1e-15);
    ck_assert_int_eq(tg_backward(y), TG_OK);
    ck_assert_ptr_null(tg_tensor_grad(h));
    double th = tanh(0.3);
    ck_assert_double_eq_tol(at(tg_tensor_grad(x), 0), 2 * th * (1 - th * th), 1e-15);
    // The output itself as input: d y / d y = 1.
    tg_tensor *z = tg_exp(x), *gz;
    tg_tensor *seed = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2), (const double[]){3, 4});
    ck_assert_int_eq(tg_grad(1, &z, &seed, 1, &z, &gz, 0), TG_OK);
    ck_assert_double_eq(at(gz, 1), 4);
    tg_tensor_free(seed);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_backward_state_errors)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){1, 2});
    tg_tensor *loss = tg_sum(tg_exp(x), NULL, 0, false);
    // No current tape: a clear TG_ESTATE from backward and from any op.
    tg_tape_set_current(NULL);
    ASSERT_FRESH_FAIL(tg_backward(loss), TG_ESTATE, "tg_backward: no current tape");
    ASSERT_FRESH_NULL_FAIL(tg_exp(x), TG_ESTATE, "tg_exp: no current tape");
    ASSERT_FRESH_NULL_FAIL(tg_full(TG_F64, TG_SHAPE(2), 0), TG_ESTATE, "tg_full: no current tape");
    ASSERT_FRESH_NULL_FAIL(tg_detach(x), TG_ESTATE, "tg_detach: no current tape");
    // Another tape is current: the output's nodes are not on it.
    tg_tape *other = tg_tape_new();
    ASSERT_FRESH_FAIL(tg_backward(loss), TG_ESTATE, "recorded on another tape");
    tg_tape_free(other);
    tg_tape_set_current(tape);
    // A seed of another dtype.
    tg_tensor *seed32 = tg_tensor_ones(TG_F32, 0, NULL);
    ASSERT_FRESH_FAIL(tg_backward_ex(loss, seed32, 0), TG_EDTYPE,
                      "tg_backward: seed is float32, output is float64");
    tg_tensor_free(seed32);
    // Failed attempts did not touch .grad; a good one still works, once.
    ck_assert_ptr_null(tg_tensor_grad(x));
    ck_assert_int_eq(tg_backward(loss), TG_OK);
    ASSERT_FRESH_FAIL(tg_backward(loss), TG_ESTATE, "pass TG_RETAIN_GRAPH to walk it twice");
    ck_assert_double_eq_tol(at(tg_tensor_grad(x), 1), exp(2), 1e-14); // not doubled
    // The functional form releases the graph too, unless asked to retain it.
    tg_tensor *l2 = tg_sum(tg_tanh(x), NULL, 0, false), *g;
    ck_assert_int_eq(tg_grad(1, &l2, NULL, 1, &x, &g, 0), TG_OK);
    ASSERT_FRESH_FAIL(tg_grad(1, &l2, NULL, 1, &x, &g, 0), TG_ESTATE,
                      "tg_grad: the graph through op 'sum' was released");
    // Backward inside a no-grad scope works and keeps the scope.
    tg_tensor *l3 = tg_sum(tg_sigmoid(x), NULL, 0, false);
    bool prev = tg_set_grad_enabled(false);
    ck_assert_int_eq(tg_backward(l3), TG_OK);
    ck_assert(!tg_grad_enabled());
    tg_set_grad_enabled(prev);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_explain_names_every_op)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2, 3), (const double[]){1, 2, 3, -1, 0.5, 2});
    tg_tensor *w = param(TG_F64, TG_SHAPE(3, 2), (const double[]){0.1, 0.2, -0.3, 0.4, 0.5, 0.6});
    tg_tensor *b = param(TG_F64, TG_SHAPE(2), (const double[]){0.01, -0.02});
    tg_tensor *h = tg_tanh(tg_add(tg_matmul(x, w), b));
    tg_tensor *loss = tg_mean(tg_pow_scalar(tg_log_softmax(h, 1), 2), NULL, 0, false);
    FILE *f = tmpfile();
    tg_tape_explain(tape, f);
    ck_assert_int_eq(tg_backward(loss), TG_OK);
    tg_tape_explain(tape, NULL);
    long size = ftell(f);
    char *text = calloc(1, (size_t)size + 1);
    rewind(f);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    const char *ops[] = {"] matmul", "] add", "] tanh", "] log_softmax", "] pow_scalar",
                         "] mean"};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(strstr(text, ops[i]), "no '%s' in the explanation:\n%s", ops[i], text);
    // Visited in reverse: the loss's last op first.
    ck_assert(strstr(text, "] mean") < strstr(text, "] matmul"));
    free(text);
    // Explaining is off again: nothing more is written (the stream is closed).
    tg_tensor *l2 = tg_sum(tg_exp(x), NULL, 0, false);
    ck_assert_int_eq(tg_backward(l2), TG_OK);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
    tg_tape_free(tape);
}
END_TEST

/* The tools/bench/tiny_step network (2-8-1, tanh, MSE, SGD at 0.1 on the
 * four XOR points, tape reset per step) trained for `steps` steps: the final
 * weights and the last loss as float bits. */
static void xor_train(int steps, uint32_t w[33], uint32_t *loss_bits)
{
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_from_doubles(TG_F32, TG_SHAPE(4, 2),
                                          (double[]){0, 0, 0, 1, 1, 0, 1, 1});
    tg_tensor *y = tg_tensor_from_doubles(TG_F32, TG_SHAPE(4, 1), (double[]){0, 1, 1, 0});
    tg_tensor *p[4] = {tg_tensor_uniform(TG_F32, TG_SHAPE(2, 8), -1, 1, &rng),
                       tg_tensor_zeros(TG_F32, TG_SHAPE(8)),
                       tg_tensor_uniform(TG_F32, TG_SHAPE(8, 1), -1, 1, &rng),
                       tg_tensor_zeros(TG_F32, TG_SHAPE(1))};
    for (int i = 0; i < 4; i++)
        tg_tensor_set_requires_grad(p[i], true);
    tg_tape *tape = tg_tape_new();
    float loss = NAN;
    for (int s = 0; s < steps; s++) {
        tg_tensor *h = tg_tanh(tg_add(tg_matmul(x, p[0]), p[1]));
        tg_tensor *out = tg_add(tg_matmul(h, p[2]), p[3]);
        tg_tensor *l = tg_mean(tg_pow_scalar(tg_sub(out, y), 2), NULL, 0, false);
        ck_assert_msg(l && tg_backward(l) == TG_OK, "%s", tg_last_error());
        loss = *(const float *)tg_tensor_data(l);
        for (int i = 0; i < 4; i++) {
            float *wi = tg_tensor_data(p[i]), *g = tg_tensor_data(tg_tensor_grad(p[i]));
            for (int64_t k = 0; k < tg_tensor_numel(p[i]); k++) {
                wi[k] -= 0.1f * g[k];
                g[k] = 0;
            }
        }
        tg_tape_reset(tape);
    }
    memcpy(loss_bits, &loss, 4);
    int n = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(w + n, tg_tensor_data(p[i]), (size_t)tg_tensor_numel(p[i]) * 4);
        n += (int)tg_tensor_numel(p[i]);
        tg_tensor_free(p[i]);
    }
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tape_free(tape);
}

/* The bits of xor_train(100) from the code before the builder's and the
 * walk's fast paths (commit d443ddb): the fast paths compute the same
 * numbers. Every GEMM kernel and both tanh kernels give these bits (see
 * check_kernels), so they hold on every CPU. */
static const uint32_t XOR_W1[16] = {
    0x3e735a2a, 0x3d0c3567, 0xbc9087e4, 0xbe9c528e, 0x3f8994dc, 0xbf4c8b69, 0xbf7f2955,
    0xbe9aac1c, 0x3ec6feff, 0x3ddea985, 0x3f19794a, 0x3f490b4b, 0x3fa4437e, 0x3eaf758f,
    0x3ec91116, 0x3f2f349b};
static const uint32_t XOR_B1[8] = {
    0xbe866aa7, 0xbc51f65b, 0xbe15a1aa, 0x3daf07db, 0xbdde67a7, 0xbdcd89b3, 0xbe113103,
    0xbe08c1ba};
static const uint32_t XOR_W2[8] = {
    0xbed4e18c, 0x3d412e00, 0xbefeab23, 0xbf112f6d, 0x3f8fb0c6, 0x3e8b089b, 0x3efd1d5c,
    0x3bf9a263};
static const uint32_t XOR_B2[1] = {0x3e93e646};
static const uint32_t XOR_LOSS = 0x3d895ecc;

START_TEST(test_tiny_step_bits)
{
    uint32_t w[33], loss, w_anomaly[33], loss_anomaly;
    xor_train(100, w, &loss);
    const uint32_t *want[4] = {XOR_W1, XOR_B1, XOR_W2, XOR_B2};
    const int len[4] = {16, 8, 8, 1};
    for (int i = 0, n = 0; i < 4; n += len[i++])
        for (int k = 0; k < len[i]; k++)
            ck_assert_msg(w[n + k] == want[i][k], "parameter %d element %d: 0x%08x, want 0x%08x",
                          i, k, (unsigned)w[n + k], (unsigned)want[i][k]);
    ck_assert_uint_eq(loss, XOR_LOSS);
    // Anomaly mode sends the engine's bias sums through recorded ops (the
    // general path): the same bits.
    bool prev = tg_set_anomaly_mode(true);
    xor_train(100, w_anomaly, &loss_anomaly);
    tg_set_anomaly_mode(prev);
    ck_assert(memcmp(w, w_anomaly, sizeof w) == 0);
    ck_assert_uint_eq(loss, loss_anomaly);
}
END_TEST

/* A user op (the identity) whose backward fails while *ctx is nonzero. */
static tg_status flaky_forward(tg_tensor *out, tg_tensor *const *in, void *ctx)
{
    (void)ctx;
    memcpy(tg_tensor_data(out), tg_tensor_data(in[0]), (size_t)tg_tensor_numel(out) * 8);
    return TG_OK;
}

static tg_status flaky_backward(tg_tensor *const *in, tg_tensor *out, tg_tensor *dout,
                                const bool *needs, tg_tensor **din, void *ctx)
{
    if (*(int *)ctx)
        return tg_set_error(TG_EINVAL, "flaky: failing on purpose");
    din[0] = dout;
    return TG_OK;
}

static const tg_op_def_user FLAKY = {.name = "flaky", .n_inputs = 1, .forward = flaky_forward,
                                     .backward = flaky_backward};

START_TEST(test_failed_walk_releases_nothing)
{
    // The walk marks nodes released as it goes: one that fails half way (at
    // flaky, after sum and exp were walked) must take the marks back.
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(3), (const double[]){0.5, -1, 2});
    int fail = 1;
    tg_tensor *loss = tg_sum(tg_exp(tg_apply(&FLAKY, 1, (tg_tensor *[]){tg_mul(x, x)}, &fail)),
                             NULL, 0, false);
    ck_assert_ptr_nonnull(loss);
    ASSERT_FRESH_FAIL(tg_backward(loss), TG_EINVAL, "flaky: failing on purpose");
    ck_assert_ptr_null(tg_tensor_grad(x));
    fail = 0;
    ck_assert_int_eq(tg_backward(loss), TG_OK); // nothing was released
    const double xv[3] = {0.5, -1, 2};
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(at(tg_tensor_grad(x), i), exp(xv[i] * xv[i]) * 2 * xv[i], 1e-12);
    // That walk succeeded, so it released the graph.
    ASSERT_FRESH_FAIL(tg_backward(loss), TG_ESTATE, "released by an earlier backward");
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

/* ---- the engine's seams: small nodes, stale and foreign tensors, limits,
 * no allocation per step, anomaly mode ---- */

START_TEST(test_node_is_small)
{
    printf("sizeof(tg_node) = %zu bytes (parameters beside it in the arena)\n", sizeof(tg_node));
    ck_assert_uint_le(sizeof(tg_node), 96);
}
END_TEST

/* Issue 11 item 1: an expression started on tape A and finished on B used to
 * return TG_OK with x's gradient never filled. */
START_TEST(test_cross_tape_expression_refused)
{
    tg_tensor *x = param(TG_F64, TG_SHAPE(3), (double[]){1, 2, 3});
    tg_tape *a = tg_tape_new();
    tg_tensor *y = tg_mul_scalar(x, 2);
    tg_tape *b = tg_tape_new(); // now current
    ck_assert_ptr_eq(tg_tape_current(), b);
    tg_tensor *loss = tg_sum(tg_mul_scalar(y, 3), NULL, 0, false);
    ck_assert_ptr_null(loss);
    ASSERT_FAIL(tg_last_status(), TG_ESTATE, "tg_mul_scalar: input 0 requires grad and was made "
                                             "on tape #");
    ck_assert_msg(strstr(tg_last_error(), "but the current tape is #"), "%s", tg_last_error());
    ck_assert_int_eq(tg_backward(loss), TG_ESTATE); // the cause is kept
    // Finished on its own tape, the same expression works: 6, 6, 6.
    tg_tape_set_current(a);
    ck_assert_int_eq(tg_backward(tg_sum(tg_mul_scalar(y, 3), NULL, 0, false)), TG_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(at(tg_tensor_grad(x), i), 6);
    // A constant (no grad) from another live tape may still be read.
    tg_tensor *c = tg_full(TG_F64, TG_SHAPE(3), 1.0);
    tg_tape_set_current(b);
    ck_assert_ptr_nonnull(tg_add(c, c));
    tg_tape_free(a);
    tg_tape_free(b);
    tg_tensor_free(x);
}
END_TEST

/* Issue 11 item 2: ops, backward and accessors on a tensor from before a
 * reset used to crash (NULL dereference, or freed memory with several arena
 * chunks); they fail with TG_ESTATE. */
START_TEST(test_stale_tensor_detected)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F32, TG_SHAPE(4), (double[]){1, 2, 3, 4});
    // Enough data for several arena chunks.
    tg_tensor *big = NULL;
    for (int i = 0; i < 4; i++)
        big = tg_exp(tg_full(TG_F32, TG_SHAPE(512, 512), 0.5));
    tg_tensor *y = tg_mul(x, x);
    tg_tensor *loss = tg_sum(y, NULL, 0, false);
    ck_assert_ptr_nonnull(big);
    tg_tape_reset(tape);
    ASSERT_FRESH_NULL_FAIL(tg_relu(y), TG_ESTATE, "tg_relu: tensor from before tg_tape_reset");
    ASSERT_FRESH_NULL_FAIL(tg_add(x, big), TG_ESTATE, "tg_add: tensor from before tg_tape_reset");
    ck_assert_int_eq(tg_backward(loss), TG_ESTATE);
    ASSERT_FAIL(tg_last_status(), TG_ESTATE, "tg_backward: tensor from before tg_tape_reset");
    ck_assert(isnan(tg_tensor_item(loss)));
    ASSERT_FAIL(tg_last_status(), TG_ESTATE, "tg_tensor_item: tensor from before tg_tape_reset");
    ck_assert_ptr_null(tg_tensor_data(big));
    ASSERT_FAIL(tg_last_status(), TG_ESTATE, "tg_tensor_data: tensor from before");
    ck_assert_int_eq(tg_tensor_fill(big, 1.0), TG_ESTATE);
    ck_assert_ptr_null(tg_detach(y));
    // Found by the fuzzer: marking a stale op result, and dropout's pass-through.
    ASSERT_FAIL(tg_tensor_set_requires_grad(y, true), TG_ESTATE, "tensor from before");
    ASSERT_FRESH_NULL_FAIL(tg_dropout(y, 0.0, false, NULL), TG_ESTATE,
                           "tg_dropout: tensor from before tg_tape_reset");
    // Fresh work on the same tape is fine, and so is the caller-owned leaf.
    ck_assert_int_eq(tg_backward(tg_sum(tg_mul(x, x), NULL, 0, false)), TG_OK);
    ck_assert_double_eq(at(tg_tensor_grad(x), 3), 8);
    tg_tape_free(tape);
    tg_tensor_free(x);
}
END_TEST

/* Issue 11 item 8: a loop that forgets tg_tape_reset grows without bound; a
 * limit turns that into a clear TG_ENOMEM. */
/* Issue 8 item 4: tg_tape_bytes is what the arena holds, tg_tape_high_water
 * the most it had in use at once; both cover a step's tensors, the high-water
 * mark stays after a reset, and neither grows on a repeated step. */
START_TEST(test_tape_bytes_and_high_water)
{
    tg_tape *tape = tg_tape_new();
    ck_assert_uint_eq(tg_tape_bytes(tape), 0);
    ck_assert_uint_eq(tg_tape_high_water(tape), 0);
    tg_tensor *x = param(TG_F32, TG_SHAPE(1000), (double[1000]){0});
    size_t bytes = 0, high = 0;
    for (int step = 0; step < 3; step++) {
        tg_tensor *y = tg_tanh(tg_mul(x, x)); // two 4,000-byte results, then their grads
        ck_assert_int_eq(tg_backward(tg_sum(y, NULL, 0, false)), TG_OK);
        ck_assert_uint_ge(tg_tape_high_water(tape), 2 * 1000 * sizeof(float));
        ck_assert_uint_ge(tg_tape_bytes(tape), tg_tape_high_water(tape));
        if (step == 0) {
            bytes = tg_tape_bytes(tape);
            high = tg_tape_high_water(tape);
        }
        ck_assert_uint_eq(tg_tape_bytes(tape), bytes);
        ck_assert_uint_eq(tg_tape_high_water(tape), high);
        tg_tape_reset(tape);
        ck_assert_uint_eq(tg_tape_high_water(tape), high); // a mark, not the current use
    }
    tg_clear_error();
    ck_assert_uint_eq(tg_tape_high_water(NULL), 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_tape_high_water: tape is NULL");
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_tape_limit)
{
    tg_tape *tape = tg_tape_new();
    // The tape's getters and setters say when they are given NULL.
    tg_clear_error();
    ck_assert_uint_eq(tg_tape_size(NULL), 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_tape_size");
    tg_clear_error(); // a pending failure's message is kept, as ops do
    ck_assert_uint_eq(tg_tape_bytes(NULL), 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_tape_bytes");
    tg_clear_error();
    tg_tape_explain(NULL, stdout);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_tape_explain");
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        tg_tensor *w = param(TG_F32, TG_SHAPE(2), (double[]){1, 2});
        ck_assert_ptr_nonnull(tg_mul(w, w));
        ASSERT_FAIL(tg_tape_print(tape, full), TG_EIO, "tg_tape_print: writing");
        // A backward that explains into a stream that cannot be written says so.
        tg_tape_explain(tape, full);
        ASSERT_FAIL(tg_backward(tg_sum(tg_mul(w, w), NULL, 0, false)), TG_EIO,
                    "tg_backward: writing the explanation to its stream failed");
        tg_tape_explain(tape, NULL);
        fclose(full);
        tg_tensor_free(w);
        tg_tape_reset(tape);
    }
    ASSERT_FAIL(tg_tape_set_limit(NULL, 1), TG_EINVAL, "tg_tape_set_limit: tape is NULL");
    ck_assert_int_eq(tg_tape_set_limit(tape, 4u << 20), TG_OK);
    tg_tensor *x = param(TG_F32, TG_SHAPE(16, 16), (double[256]){0});
    tg_tensor *loss = NULL;
    int steps = 0;
    for (; steps < 100000; steps++) {
        loss = tg_sum(tg_tanh(tg_matmul(x, x)), NULL, 0, false);
        if (!loss || tg_backward(loss) != TG_OK)
            break; // no tg_tape_reset: the bug being caught
    }
    ck_assert_int_lt(steps, 100000);
    ck_assert_int_eq(tg_last_status(), TG_ENOMEM);
    ck_assert_msg(strstr(tg_last_error(), "memory limit of 4194304 bytes is reached") &&
                      strstr(tg_last_error(), "call tg_tape_reset after each step"),
                  "%s", tg_last_error());
    ck_assert_uint_le(tg_tape_bytes(tape), 4u << 20);
    ck_assert_uint_gt(tg_tape_high_water(tape), 0);
    // With the reset the same loop runs on.
    tg_tape_reset(tape);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(tg_backward(tg_sum(tg_tanh(tg_matmul(x, x)), NULL, 0, false)), TG_OK);
        tg_tape_reset(tape);
    }
    tg_tape_free(tape);
    tg_tensor_free(x);
}
END_TEST

/* Issue 11 item 13: from the second step on, a training step takes no memory
 * from the system (the leaf list of a walk used to be malloc'ed each time). */
START_TEST(test_step_allocates_nothing)
{
    tg_rng rng = tg_rng_seeded(5);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(4, 2), -1, 1, &rng);
    tg_tensor *w1 = tg_tensor_uniform(TG_F32, TG_SHAPE(2, 8), -1, 1, &rng);
    tg_tensor *w2 = tg_tensor_uniform(TG_F32, TG_SHAPE(8, 1), -1, 1, &rng);
    tg_tensor_set_requires_grad(w1, true);
    tg_tensor_set_requires_grad(w2, true);
    tg_tape *tape = tg_tape_new();
    long before = 0;
    for (int step = 0; step < 50; step++) {
        if (step == 2)
            before = tg__alloc_count();
        tg_tensor *h = tg_relu(tg_matmul(x, w1));
        tg_tensor *loss = tg_mean(tg_square(tg_sigmoid(tg_matmul(h, w2))), NULL, 0, false);
        ck_assert_int_eq(tg_backward(loss), TG_OK);
        tg_tensor_zero_grad(w1);
        tg_tensor_zero_grad(w2);
        tg_tape_reset(tape);
    }
    ck_assert_int_eq(tg__alloc_count(), before);
    tg_tape_free(tape);
    tg_tensor *all[] = {x, w1, w2};
    for (int i = 0; i < 3; i++)
        tg_tensor_free(all[i]);
}
END_TEST

/* The same for a step through the ops of issue 10 (layer norm, causal
 * attention, the new reductions): their saved statistics, probabilities and
 * scratch all come from the tape. */
START_TEST(test_attention_step_allocates_nothing)
{
    tg_rng rng = tg_rng_seeded(6);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(2, 5, 8), -1, 1, &rng);
    tg_tensor *gamma = tg_tensor_uniform(TG_F32, TG_SHAPE(8), 0.5, 1.5, &rng);
    tg_tensor *w = tg_tensor_uniform(TG_F32, TG_SHAPE(8, 8), -1, 1, &rng);
    tg_tensor_set_requires_grad(gamma, true);
    tg_tensor_set_requires_grad(w, true);
    tg_tape *tape = tg_tape_new();
    long before = 0;
    for (int step = 0; step < 20; step++) {
        if (step == 2)
            before = tg__alloc_count();
        tg_tensor *h = tg_matmul(tg_layer_norm(x, 1, gamma, NULL, 1e-5), w);
        tg_tensor *a = tg_scaled_dot_product_attention(h, h, h, true, 0);
        tg_tensor *r = tg_add(tg_var(a, (const int[]){-1}, 1, 1, false),
                              tg_min(tg_cumsum(a, 1), (const int[]){-1}, 1, false));
        tg_tensor *loss = tg_add(tg_mean(r, NULL, 0, false),
                                 tg_mean(tg_prod(tg_slice(a, 2, 0, 3, 1), (const int[]){-1}, 1,
                                                 false), NULL, 0, false));
        ck_assert_int_eq(tg_backward(loss), TG_OK);
        tg_tensor_zero_grad(gamma);
        tg_tensor_zero_grad(w);
        tg_tape_reset(tape);
    }
    ck_assert_int_eq(tg__alloc_count(), before);
    tg_tape_free(tape);
    tg_tensor *all[] = {x, gamma, w};
    for (int i = 0; i < 3; i++)
        tg_tensor_free(all[i]);
}
END_TEST

START_TEST(test_anomaly_mode)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (double[]){-1, 2});
    ck_assert(!tg_anomaly_mode());
    // Off (the default): the NaN passes silently, as in plain IEEE arithmetic.
    ck_assert_ptr_nonnull(tg_log(x));
    ck_assert(!tg_set_anomaly_mode(true));
    tg_tensor *sq = tg_mul(x, x);
    ck_assert_ptr_nonnull(sq);
    size_t recorded = tg_tape_size(tape);
    ASSERT_FRESH_NULL_FAIL(tg_log(x), TG_ENUMERIC, "tg_log: produced ");
    ck_assert_msg(strstr(tg_last_error(), "at element 0 from input with min -1, max 2 (node [") &&
                      strstr(tg_last_error(), "op log)"),
                  "%s", tg_last_error());
    ck_assert_uint_eq(tg_tape_size(tape), recorded); // the failed call recorded nothing
    // A composite names the public call; the node is the op inside it.
    tg_tensor *zero = tg_full(TG_F64, TG_SHAPE(2), 0.0);
    ASSERT_FRESH_NULL_FAIL(tg_rdiv_scalar(zero, 2.0), TG_ENUMERIC, "tg_rdiv_scalar: produced inf");
    ck_assert_msg(strstr(tg_last_error(), "op pow_scalar, not recorded"), "%s", tg_last_error());
    // Backward: d sqrt(u)/du at u = 0 is infinite.
    tg_tensor *z = param(TG_F64, TG_SHAPE(2), (double[]){0, 4});
    tg_tensor *loss = tg_sum(tg_sqrt(z), NULL, 0, false);
    ck_assert_ptr_nonnull(loss);
    ck_assert_int_eq(tg_backward(loss), TG_ENUMERIC);
    ck_assert_msg(strstr(tg_last_error(), "tg_backward: the backward of sqrt (node [") &&
                      strstr(tg_last_error(), "produced inf at element 0 of the gradient for "
                                              "input 0 from input with min 0, max 4"),
                  "%s", tg_last_error());
    ck_assert(tg_set_anomaly_mode(false));
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(z);
}
END_TEST

/* cross_entropy's fused backward (one pass) against its composed rule. */
START_TEST(test_fused_cross_entropy_matches_composed)
{
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(9);
    tg_tensor *x = tg_tensor_uniform(TG_F64, TG_SHAPE(4, 5), -3, 3, &rng);
    tg_tensor_set_requires_grad(x, true);
    const int64_t labels[] = {0, 4, 2, 2};
    tg_tensor *w = tg_tensor_uniform(TG_F64, TG_SHAPE(4), 0.5, 2, &rng);
    tg_tensor *loss = tg_sum(tg_mul(tg_cross_entropy(x, labels, TG_REDUCE_NONE), w), NULL, 0,
                             false);
    tg_tensor *fused, *composed;
    ck_assert_int_eq(tg_grad(1, &loss, NULL, 1, &x, &fused, TG_RETAIN_GRAPH), TG_OK);
    ck_assert_int_eq(tg_grad(1, &loss, NULL, 1, &x, &composed, TG_CREATE_GRAPH), TG_OK);
    for (int64_t i = 0; i < 20; i++)
        ck_assert_double_eq_tol(at(fused, i), at(composed, i), 1e-14);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_tensor_free(w);
}
END_TEST

/* ---- explain v2 and DOT export ---- */

/* Everything written to f so far, as a malloc'd string; closes f. */
static char *slurp(FILE *f)
{
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    char *text = calloc(1, (size_t)size + 1);
    rewind(f);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    return text;
}

/* loss = sum((x + c) * x): x (2) is broadcast against the constant c (2x1)
 * in both ops, so each of its two gradients is summed from 2x2 back to 2,
 * and they add up to d loss/dx = 4x + c0 + c1 = [8, 12]. */
static tg_tensor *explain_example(tg_tensor *x, tg_tensor *c)
{
    return tg_sum(tg_mul(tg_add(x, c), x), NULL, 0, false);
}

static const char EXPLAIN_EXPECTED[] =
    "tg_backward: walking back from [2] sum scalar\n"
    "    seed       tensor(1.0000, dtype=float64)\n"
    "[2] sum <- [1] mul 2x2\n"
    "    in[0]      tensor([[ 2.0000,  6.0000],\n"
    "                       [ 4.0000, 10.0000]], dtype=float64, requires_grad=true)\n"
    "    out        tensor(22.0000, dtype=float64, requires_grad=true)\n"
    "    grad out   tensor(1.0000, dtype=float64)\n"
    "    grad in[0] tensor([[1.0000, 1.0000],\n"
    "                       [1.0000, 1.0000]], dtype=float64)\n"
    "[1] mul <- [0] add 2x2, leaf #0 2\n"
    "    in[0]      tensor([[2.0000, 3.0000],\n"
    "                       [4.0000, 5.0000]], dtype=float64, requires_grad=true)\n"
    "    in[1]      tensor([1.0000, 2.0000], dtype=float64, requires_grad=true)\n"
    "    out        tensor([[ 2.0000,  6.0000],\n"
    "                       [ 4.0000, 10.0000]], dtype=float64, requires_grad=true)\n"
    "    grad out   tensor([[1.0000, 1.0000],\n"
    "                       [1.0000, 1.0000]], dtype=float64)\n"
    "    grad in[0] tensor([[1.0000, 2.0000],\n"
    "                       [1.0000, 2.0000]], dtype=float64)\n"
    "    grad in[1] tensor([[2.0000, 3.0000],\n"
    "                       [4.0000, 5.0000]], dtype=float64)\n"
    "      2x2 -> 2 for leaf #0 2: summed over the dimensions it was broadcast along\n"
    "    summed     tensor([6.0000, 8.0000], dtype=float64)\n"
    "      contribution 1 of 2 to leaf #0 2\n"
    "[0] add <- leaf #0 2, constant 2x1\n"
    "    in[0]      tensor([1.0000, 2.0000], dtype=float64, requires_grad=true)\n"
    "    in[1]      tensor([[1.0000],\n"
    "                       [3.0000]], dtype=float64)\n"
    "    out        tensor([[2.0000, 3.0000],\n"
    "                       [4.0000, 5.0000]], dtype=float64, requires_grad=true)\n"
    "    grad out   tensor([[1.0000, 2.0000],\n"
    "                       [1.0000, 2.0000]], dtype=float64)\n"
    "    grad in[0] tensor([[1.0000, 2.0000],\n"
    "                       [1.0000, 2.0000]], dtype=float64)\n"
    "      2x2 -> 2 for leaf #0 2: summed over the dimensions it was broadcast along\n"
    "    summed     tensor([2.0000, 4.0000], dtype=float64)\n"
    "      contribution 2 of 2 to leaf #0 2, added to the running total:\n"
    "    total      tensor([ 8.0000, 12.0000], dtype=float64)\n"
    "after the walk, .grad of each leaf it reached (tg_backward adds to what .grad held):\n"
    "    leaf #0    tensor([ 8.0000, 12.0000], dtype=float64)\n";

START_TEST(test_explain_exact_text)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){1, 2});
    tg_tensor *c = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 1), (const double[]){1, 3});
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tg_tape_explain(tape, f);
    ck_assert_int_eq(tg_backward(explain_example(x, c)), TG_OK);
    tg_tape_explain(tape, NULL);
    char *text = slurp(f);
    ck_assert_str_eq(text, EXPLAIN_EXPECTED);
    free(text);
    ck_assert_double_eq(at(tg_tensor_grad(x), 0), 8);
    ck_assert_double_eq(at(tg_tensor_grad(x), 1), 12);
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tape_free(tape);
}
END_TEST

START_TEST(test_explain_options_tg_grad_and_reset)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){1, 2});
    tg_tensor *c = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 1), (const double[]){1, 3});
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tg_explain_opts o = tg_explain_defaults();
    ck_assert_int_eq(o.digits, 4);
    o.digits = 2;
    ck_assert_int_eq(tg_tape_explain_ex(tape, f, &o), TG_OK);
    // The setting outlives a reset: the next step is explained too.
    ck_assert_ptr_nonnull(explain_example(x, c));
    tg_tape_reset(tape);
    tg_tensor *loss = explain_example(x, c), *g;
    ck_assert_int_eq(tg_grad(1, &loss, NULL, 1, &x, &g, 0), TG_OK);
    tg_tape_explain(tape, NULL);
    // Off again: this walk writes nothing more.
    ck_assert_int_eq(tg_backward(explain_example(x, c)), TG_OK);
    char *text = slurp(f);
    const char *want[] = {"tg_grad: walking back from [2] sum scalar",
                          "    seed       tensor(1.00, dtype=float64)",
                          "[0] add <- leaf #0 2, constant 2x1",
                          "      contribution 2 of 2 to leaf #0 2",
                          ("tg_grad returns:\n  for inputs[0], leaf #0 2:\n"
                           "    grads[0]   tensor([ 8.00, 12.00], dtype=float64)\n")};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(strstr(text, want[i]), "missing '%s' in:\n%s", want[i], text);
    ck_assert_ptr_null(strstr(text, "tg_backward"));
    ck_assert_ptr_null(strstr(text, "1.0000"));
    free(text);
    // Bad options leave the setting as it was.
    o.digits = 18;
    ASSERT_FRESH_FAIL(tg_tape_explain_ex(tape, stdout, &o), TG_EINVAL,
                      "tg_tape_explain_ex: digits 18 out of range 0..17");
    o.digits = -1;
    ASSERT_FRESH_FAIL(tg_tape_explain_ex(tape, stdout, &o), TG_EINVAL, "digits -1");
    ASSERT_FRESH_FAIL(tg_tape_explain_ex(NULL, stdout, NULL), TG_EINVAL,
                      "tg_tape_explain_ex: NULL tape");
    ck_assert_int_eq(tg_backward(explain_example(x, c)), TG_OK); // would crash if on (closed f)
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tape_free(tape);
}
END_TEST

/* A user op whose name needs escaping in DOT. */
static const tg_op_def_user QUOTED = {.name = "say \"hi\\\"", .n_inputs = 1,
                                      .forward = cube_forward, .backward = cube_backward};

/* The graph of explain_example plus a branch the root does not use, written
 * as DOT with flags; *whole gets the whole tape when non-NULL. */
static char *dot_text(unsigned flags, int n_roots, char **whole)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){1, 2});
    tg_tensor *c = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 1), (const double[]){1, 3});
    tg_tensor *unused = tg_apply(&QUOTED, 1, &x, NULL);
    tg_tensor *loss = explain_example(x, c);
    ck_assert_ptr_nonnull(unused);
    ck_assert_int_eq(tg_backward_ex(loss, NULL, TG_RETAIN_GRAPH), TG_OK);
    FILE *f = tmpfile();
    ck_assert_int_eq(tg_tape_dot(tape, f, n_roots, &loss, flags), TG_OK);
    char *text = slurp(f);
    if (whole) {
        f = tmpfile();
        ck_assert_int_eq(tg_tape_dot(tape, f, 0, NULL, flags), TG_OK);
        *whole = slurp(f);
    }
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tape_free(tape);
    return text;
}

START_TEST(test_dot_structure)
{
    char *whole;
    char *text = dot_text(0, 1, &whole);
    const char *want[] = {"digraph tape {",
                          ("leaf0 [shape=ellipse, style=filled, fillcolor=\"#dbe9f6\", "
                           "label=\"leaf #0\\n2\\nrequires grad\"];"),
                          "const0 [shape=ellipse, style=dashed, label=\"constant\\n2x1\"];",
                          "op1 [shape=box, style=rounded, label=\"[1] add\\n2x2\"];",
                          "leaf0 -> op1 [label=\"0\"];", "const0 -> op1 [label=\"1\"];",
                          "op1 -> op2 [label=\"0\"];", "leaf0 -> op2 [label=\"1\"];",
                          ("op3 [shape=box, style=rounded, peripheries=2, label=\"[3] sum\\n"
                           "scalar\"];"),
                          "op2 -> op3;"};
    for (int i = 0; i < 10; i++)
        ck_assert_msg(strstr(text, want[i]), "missing '%s' in:\n%s", want[i], text);
    // The root does not reach the user op [0]; the whole tape does, escaped.
    ck_assert_ptr_null(strstr(text, "op0"));
    ck_assert_msg(strstr(whole, "label=\"[0] say \\\"hi\\\\\\\"\\n2\"]"), "%s", whole);
    ck_assert_ptr_nonnull(strstr(whole, "leaf0 -> op0;"));
    ck_assert_ptr_null(strstr(whole, "peripheries"));
    ck_assert_str_eq(text + strlen(text) - 2, "}\n");
    free(text);
    free(whole);
    // Values and grads: numbers without tensor(...), rows left-justified.
    text = dot_text(TG_DOT_VALUES | TG_DOT_GRADS, 1, NULL);
    const char *more[] = {"fontname=\"Courier\"",
                          ("label=\"leaf #0\\n2\\nrequires grad\\nvalue\\n[1.0000, 2.0000]\\l"
                           "\\ngrad\\n[ 8.0000, 12.0000]\\l\"];"),
                          ("label=\"[1] add\\n2x2\\nvalue\\n[[2.0000, 3.0000],\\l [4.0000, "
                           "5.0000]]\\l\"];"),
                          "label=\"[3] sum\\nscalar\\nvalue\\n22.0000\\l\"];"};
    for (int i = 0; i < 4; i++)
        ck_assert_msg(strstr(text, more[i]), "missing '%s' in:\n%s", more[i], text);
    ck_assert_ptr_null(strstr(text, "dtype"));
    free(text);
}
END_TEST

START_TEST(test_dot_errors)
{
    tg_tape *other = tg_tape_new();
    tg_tensor *x = param(TG_F64, TG_SHAPE(2), (const double[]){1, 2});
    tg_tensor *elsewhere = tg_exp(x);
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_exp(x);
    ASSERT_FRESH_FAIL(tg_tape_dot(NULL, stdout, 0, NULL, 0), TG_EINVAL, "tg_tape_dot: NULL tape");
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, NULL, 0, NULL, 0), TG_EINVAL, "tg_tape_dot: NULL stream");
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, stdout, -1, NULL, 0), TG_EINVAL, "n_roots is -1");
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, stdout, 2, NULL, 0), TG_EINVAL,
                      "tg_tape_dot: roots is NULL with n_roots 2");
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, stdout, 2, (tg_tensor *[]){y, NULL}, 0), TG_EINVAL,
                      "tg_tape_dot: roots[1] is NULL");
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, stdout, 1, &y, 0x10), TG_EINVAL,
                      "tg_tape_dot: unknown flags 0x10");
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, stdout, 1, &elsewhere, 0), TG_EINVAL,
                      "tg_tape_dot: roots[0] was not recorded on this tape");
    // A write that fails: a stream opened for reading only.
    const char *path = TG_TEST_BUILD_DIR "/check_tape_dot_ro.txt";
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, f, 1, &y, 0), TG_EIO,
                      "tg_tape_dot: writing the graph failed");
    fclose(f);
    remove(path);
    // A leaf as the root: drawn alone. A stale root: refused.
    f = tmpfile();
    ck_assert_int_eq(tg_tape_dot(tape, f, 1, &x, 0), TG_OK);
    char *text = slurp(f);
    ck_assert_msg(strstr(text, "leaf0 [shape=ellipse, style=filled, fillcolor=\"#dbe9f6\", "
                               "peripheries=2, label=\"leaf #0\\n2\\nrequires grad\"];"),
                  "%s", text);
    free(text);
    tg_tape_reset(tape);
    ASSERT_FRESH_FAIL(tg_tape_dot(tape, stdout, 1, &y, 0), TG_ESTATE, "tg_tape_dot");
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_tape_free(other);
}
END_TEST

/* Graphviz itself accepts the text, escaping and values included. Passes
 * without checking (and says so) where graphviz is not installed. */
START_TEST(test_dot_renders_with_graphviz)
{
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_dot_renders_with_graphviz: skipped, graphviz not installed\n");
        return;
    }
    char *whole;
    char *text = dot_text(TG_DOT_VALUES | TG_DOT_GRADS, 1, &whole);
    const char *path = TG_TEST_BUILD_DIR "/check_tape_graph.dot";
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(i ? whole : text, f);
        ck_assert_int_eq(fclose(f), 0);
        int rc = system("dot -Tsvg '" TG_TEST_BUILD_DIR "/check_tape_graph.dot' -o "
                        "'" TG_TEST_BUILD_DIR "/check_tape_graph.svg'");
        ck_assert_msg(rc == 0, "dot -Tsvg refused the graph (status %d):\n%s", rc,
                      i ? whole : text);
    }
    free(text);
    free(whole);
}
END_TEST

static Suite *tape_suite(void)
{
    Suite *s = suite_create("tape");
    TCase *bw = tcase_create("backward");
    tcase_add_test(bw, test_backward_composition);
    tcase_add_test(bw, test_broadcast_both_sides);
    tcase_add_test(bw, test_views_and_detach);
    tcase_add_test(bw, test_seed_accumulate_zero_grad);
    tcase_add_test(bw, test_backward_errors);
    tcase_add_test(bw, test_functional_grad_and_no_grad);
    tcase_add_test(bw, test_reuse_many_times);
    tcase_add_test(bw, test_broadcast_rank_difference);
    tcase_add_test(bw, test_views_and_reductions);
    tcase_add_test(bw, test_grad_of_intermediate);
    tcase_add_test(bw, test_backward_state_errors);
    tcase_add_test(bw, test_explain_names_every_op);
    suite_add_tcase(s, bw);
    TCase *second = tcase_create("second_order");
    tcase_add_test(second, test_second_derivatives_closed_form);
    tcase_add_test(second, test_hessian_vector_product);
    suite_add_tcase(s, second);
    TCase *mem = tcase_create("memory");
    tcase_set_timeout(mem, 240);
    tcase_add_test(mem, test_memory_flat_over_100k_steps);
    tcase_add_test(mem, test_tape_lifecycle);
    tcase_add_test(mem, test_explain_prints_the_walk);
    tcase_add_test(mem, test_tape_print_lists_nodes);
    tcase_add_test(mem, test_out_of_memory_everywhere);
    suite_add_tcase(s, mem);
    TCase *seams = tcase_create("seams");
    tcase_add_test(seams, test_node_is_small);
    tcase_add_test(seams, test_cross_tape_expression_refused);
    tcase_add_test(seams, test_stale_tensor_detected);
    tcase_add_test(seams, test_tape_limit);
    tcase_add_test(seams, test_tape_bytes_and_high_water);
    tcase_add_test(seams, test_step_allocates_nothing);
    tcase_add_test(seams, test_attention_step_allocates_nothing);
    tcase_add_test(seams, test_anomaly_mode);
    tcase_add_test(seams, test_fused_cross_entropy_matches_composed);
    tcase_add_test(seams, test_tiny_step_bits);
    tcase_add_test(seams, test_failed_walk_releases_nothing);
    suite_add_tcase(s, seams);
    TCase *user = tcase_create("user_ops");
    tcase_add_test(user, test_user_op_checks);
    tcase_add_test(user, test_user_op_errors);
    suite_add_tcase(s, user);
    TCase *ex = tcase_create("explain_dot");
    tcase_add_test(ex, test_explain_exact_text);
    tcase_add_test(ex, test_explain_options_tg_grad_and_reset);
    tcase_add_test(ex, test_dot_structure);
    tcase_add_test(ex, test_dot_errors);
    tcase_add_test(ex, test_dot_renders_with_graphviz);
    suite_add_tcase(s, ex);
    return s;
}

TG_CHECK_MAIN(tape_suite)
