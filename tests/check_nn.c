/* check_nn.c - the nn suite: initialisers, layers, the Sequential model and
 * its summary, training small models (XOR, a linear regression), dropout
 * modes, logits mode, gradient checks through whole models, error paths. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad/nn.h"
#include "tapegrad/tapegrad.h"
#include "tg_check.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct stats {
    double mean, std, min, max;
} stats;

static stats tensor_stats(const tg_tensor *t)
{
    int64_t n = tg_tensor_numel(t);
    double *v = malloc((size_t)n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(tg_tensor_to_doubles(t, v), TG_OK);
    stats s = {0, 0, INFINITY, -INFINITY};
    for (int64_t i = 0; i < n; i++) {
        s.mean += v[i];
        s.min = fmin(s.min, v[i]);
        s.max = fmax(s.max, v[i]);
    }
    s.mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        s.std += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = sqrt(s.std / (double)n);
    free(v);
    return s;
}

/* The model's text summary as a malloc'd string (through tmpfile: plain C11). */
static char *summary_text(const tg_model *m)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ASSERT_OK(tg_model_summary(m, f));
    long len = ftell(f);
    ck_assert_int_gt(len, 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)len, f), len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* The article's CNN, in a dozen lines. */
static tg_model *article_cnn(tg_dtype dtype, uint64_t seed)
{
    tg_model *m = tg_model_new(dtype, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, seed);
    ck_assert_ptr_nonnull(m);
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(32, 3, 3, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(64, 3, 3, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(64, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX)));
    return m;
}

static void set_values(tg_tensor *t, const double *v)
{
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        ASSERT_OK(tg_tensor_set_flat(t, i, v[i]));
}

static double flat(const tg_tensor *t, int64_t i)
{
    double v = NAN;
    ASSERT_OK(tg_tensor_get_flat(t, i, &v));
    return v;
}

/* One plain SGD step on every parameter, then zeroes the gradients. */
static void sgd_step(tg_model *m, double lr)
{
    int n;
    tg_tensor *const *ps = tg_model_params(m, &n);
    for (int i = 0; i < n; i++) {
        tg_tensor *g = tg_tensor_grad(ps[i]);
        if (!g)
            continue;
        for (int64_t k = 0; k < tg_tensor_numel(ps[i]); k++)
            ASSERT_OK(tg_tensor_set_flat(ps[i], k, flat(ps[i], k) - lr * flat(g, k)));
        tg_tensor_zero_grad(ps[i]);
    }
}

/* ---- initialisers --------------------------------------------------------- */

START_TEST(test_init_glorot_uniform)
{
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *t = tg_tensor_zeros(TG_F64, TG_SHAPE(300, 200));
    ASSERT_OK(tg_init_tensor(t, TG_INIT(GLOROT_UNIFORM), 300, 200, &rng));
    double limit = sqrt(6.0 / 500.0);
    stats s = tensor_stats(t);
    ck_assert(s.min >= -limit && s.max < limit);
    ck_assert(s.min < -0.99 * limit && s.max > 0.99 * limit); // the whole range is used
    ck_assert_double_eq_tol(s.mean, 0.0, 0.003);
    ck_assert_double_eq_tol(s.std, limit / sqrt(3.0), 0.01 * limit);
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_init_uniform_bounds)
{
    // he_uniform sqrt(6/fan_in); torch_uniform 1/sqrt(fan_in) (fan_out unused).
    struct {
        tg_init_kind kind;
        double limit;
    } cases[] = {{TG_INIT_HE_UNIFORM, sqrt(6.0 / 75)}, {TG_INIT_TORCH_UNIFORM, 1 / sqrt(75.0)}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tg_rng rng = tg_rng_seeded(7);
        tg_tensor *t = tg_tensor_zeros(TG_F32, TG_SHAPE(40000));
        ASSERT_OK(tg_init_tensor(t, (tg_init){cases[c].kind, 0}, 75, 1000, &rng));
        stats s = tensor_stats(t);
        double l = cases[c].limit;
        ck_assert_msg(s.min >= -l && s.max <= l, "%s: [%g, %g] outside +-%g",
                      tg_init_name(cases[c].kind), s.min, s.max, l);
        ck_assert(s.min < -0.99 * l && s.max > 0.99 * l);
        ck_assert_double_eq_tol(s.std, l / sqrt(3.0), 0.02 * l);
        tg_tensor_free(t);
    }
    // PyTorch's bias rule for a layer with no inputs: bound 0.
    tg_rng rng = tg_rng_seeded(7);
    tg_tensor *t = tg_tensor_ones(TG_F64, TG_SHAPE(5));
    ASSERT_OK(tg_init_tensor(t, TG_INIT(TORCH_UNIFORM), 0, 5, &rng));
    for (int i = 0; i < 5; i++)
        ck_assert_double_eq(flat(t, i), 0.0);
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_init_truncated_normals)
{
    // Keras's truncated normals: std sqrt(scale/n) after truncation at 2 of the
    // pre-truncation stds (std / 0.8796...).
    struct {
        tg_init_kind kind;
        double std;
    } cases[] = {{TG_INIT_HE_NORMAL, sqrt(2.0 / 288)},
                 {TG_INIT_GLOROT_NORMAL, sqrt(2.0 / (288 + 576))},
                 {TG_INIT_LECUN_NORMAL, sqrt(1.0 / 288)}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tg_rng rng = tg_rng_seeded(3);
        tg_tensor *t = tg_tensor_zeros(TG_F64, TG_SHAPE(64, 32, 3, 3));
        ASSERT_OK(tg_init_tensor(t, (tg_init){cases[c].kind, 0}, 288, 576, &rng));
        stats s = tensor_stats(t);
        double cut = 2 * cases[c].std / 0.87962566103423978;
        ck_assert_msg(fabs(s.std - cases[c].std) < 0.02 * cases[c].std, "%s: std %g vs %g",
                      tg_init_name(cases[c].kind), s.std, cases[c].std);
        ck_assert_double_eq_tol(s.mean, 0.0, 0.02 * cases[c].std);
        ck_assert(s.min >= -cut && s.max <= cut);
        ck_assert(s.min < -0.95 * cut && s.max > 0.95 * cut);
        tg_tensor_free(t);
    }
}
END_TEST

START_TEST(test_init_constants)
{
    tg_rng rng = tg_rng_seeded(1), before = rng;
    tg_tensor *t = tg_tensor_ones(TG_F32, TG_SHAPE(3, 4));
    ASSERT_OK(tg_init_tensor(t, TG_INIT(ZEROS), 3, 4, &rng));
    for (int i = 0; i < 12; i++)
        ck_assert_double_eq(flat(t, i), 0.0);
    ASSERT_OK(tg_init_tensor(t, TG_INIT_CONST(0.25), 3, 4, &rng));
    for (int i = 0; i < 12; i++)
        ck_assert_double_eq(flat(t, i), 0.25);
    // Constants draw nothing from the generator.
    ck_assert(memcmp(&rng, &before, sizeof rng) == 0);
    ck_assert_str_eq(tg_init_name(TG_INIT_HE_NORMAL), "he_normal");
    ck_assert_str_eq(tg_activation_name(TG_ACT_NONE), "linear");
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_init_deterministic)
{
    tg_tensor *a = tg_tensor_zeros(TG_F64, TG_SHAPE(10, 10));
    tg_tensor *b = tg_tensor_zeros(TG_F64, TG_SHAPE(10, 10));
    tg_rng r1 = tg_rng_seeded(42), r2 = tg_rng_seeded(42), r3 = tg_rng_seeded(43);
    ASSERT_OK(tg_init_tensor(a, TG_INIT(HE_NORMAL), 10, 10, &r1));
    ASSERT_OK(tg_init_tensor(b, TG_INIT(HE_NORMAL), 10, 10, &r2));
    for (int i = 0; i < 100; i++)
        ck_assert_double_eq(flat(a, i), flat(b, i));
    ASSERT_OK(tg_init_tensor(b, TG_INIT(HE_NORMAL), 10, 10, &r3));
    ck_assert(flat(a, 0) != flat(b, 0));
    tg_tensor_free(a);
    tg_tensor_free(b);

    // Two models with one seed have identical parameters; another seed differs.
    tg_model *m1 = article_cnn(TG_F32, 5), *m2 = article_cnn(TG_F32, 5);
    tg_model *m3 = article_cnn(TG_F32, 6);
    int n1, n2, n3;
    tg_tensor *const *p1 = tg_model_params(m1, &n1), *const *p2 = tg_model_params(m2, &n2);
    tg_tensor *const *p3 = tg_model_params(m3, &n3);
    ck_assert_int_eq(n1, 8);
    ck_assert_int_eq(n1, n2);
    for (int i = 0; i < n1; i++) {
        int64_t n = tg_tensor_numel(p1[i]);
        ck_assert(memcmp(tg_tensor_data(p1[i]), tg_tensor_data(p2[i]),
                         (size_t)n * sizeof(float)) == 0);
    }
    ck_assert(memcmp(tg_tensor_data(p1[0]), tg_tensor_data(p3[0]), 9 * sizeof(float)) != 0);
    tg_model_free(m1);
    tg_model_free(m2);
    tg_model_free(m3);
}
END_TEST

START_TEST(test_init_schemes)
{
    // Keras: glorot-uniform kernels, zero biases.
    tg_model *k = tg_model_new(TG_F64, TG_SHAPE(100), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(k, tg_layer_dense(50, TG_ACT_NONE)));
    int n;
    tg_tensor *const *p = tg_model_params(k, &n);
    ck_assert_int_eq(n, 2);
    stats w = tensor_stats(p[0]), b = tensor_stats(p[1]);
    ck_assert(w.max < sqrt(6.0 / 150) && w.max > 0.98 * sqrt(6.0 / 150));
    ck_assert(b.min == 0.0 && b.max == 0.0);
    tg_model_free(k);

    // PyTorch: U(+-1/sqrt(fan_in)) for both; conv fan_in = C*KH*KW = 3*5*5.
    tg_model *t = tg_model_new(TG_F64, TG_SHAPE(3, 32, 32), TG_SCHEME_PYTORCH, 1);
    ASSERT_OK(tg_model_add(t, tg_layer_conv2d(400, 5, 5, TG_ACT_NONE)));
    p = tg_model_params(t, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(tg_tensor_ndim(p[0]), 4);
    ck_assert_int_eq(tg_tensor_dim(p[0], 0), 400);
    ck_assert_int_eq(tg_tensor_dim(p[0], 1), 3);
    w = tensor_stats(p[0]);
    b = tensor_stats(p[1]);
    double bound = 1 / sqrt(75.0);
    ck_assert(w.max <= bound && w.max > 0.99 * bound && w.min >= -bound);
    ck_assert(b.max <= bound && b.max > 0.9 * bound && b.min >= -bound);
    tg_model_free(t);

    // Explicit initialisers override the scheme.
    tg_dense_opts o = tg_dense_defaults();
    o.kernel_init = TG_INIT_CONST(0.5);
    o.bias_init = TG_INIT_CONST(-1);
    tg_model *c = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_PYTORCH, 1);
    ASSERT_OK(tg_model_add(c, tg_layer_dense_ex(3, TG_ACT_NONE, &o)));
    p = tg_model_params(c, &n);
    ck_assert_double_eq(flat(p[0], 5), 0.5);
    ck_assert_double_eq(flat(p[1], 2), -1.0);
    o.use_bias = false;
    ASSERT_OK(tg_model_add(c, tg_layer_dense_ex(4, TG_ACT_NONE, &o)));
    ck_assert_int_eq(tg_layer_param_count(tg_model_layer(c, 1)), 12);
    tg_model_params(c, &n);
    ck_assert_int_eq(n, 3);
    tg_model_free(c);
}
END_TEST

START_TEST(test_init_errors)
{
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *t = tg_tensor_zeros(TG_F32, TG_SHAPE(2));
    ASSERT_FAIL(tg_init_tensor(NULL, TG_INIT(ZEROS), 1, 1, &rng), TG_EINVAL, "tensor is NULL");
    ASSERT_FAIL(tg_init_tensor(t, TG_INIT(ZEROS), 1, 1, NULL), TG_EINVAL, "rng is NULL");
    ASSERT_FAIL(tg_init_tensor(t, TG_INIT(DEFAULT), 1, 1, &rng), TG_EINVAL, "TG_INIT_DEFAULT");
    ASSERT_FAIL(tg_init_tensor(t, TG_INIT(HE_NORMAL), -1, 1, &rng), TG_EINVAL, "negative fan");
    ASSERT_FAIL(tg_init_tensor(t, TG_INIT_CONST(NAN), 1, 1, &rng), TG_EINVAL, "not finite");
    ASSERT_FAIL(tg_init_tensor(t, (tg_init){(tg_init_kind)99, 0}, 1, 1, &rng), TG_EINVAL,
                "unknown init kind 99");
    tg_tensor_free(t);
}
END_TEST

/* ---- layers and the model ---------------------------------------------- */

static const char article_summary[] =
    "Model: \"sequential\"\n"
    "___________________________________________________________________\n"
    "Layer (type)                   Output Shape              Param #\n"
    "===================================================================\n"
    "conv2d (Conv2D)                (None, 32, 26, 26)        320\n"
    "___________________________________________________________________\n"
    "max_pooling2d (MaxPooling2D)   (None, 32, 13, 13)        0\n"
    "___________________________________________________________________\n"
    "conv2d_1 (Conv2D)              (None, 64, 11, 11)        18496\n"
    "___________________________________________________________________\n"
    "max_pooling2d_1 (MaxPooling2D) (None, 64, 5, 5)          0\n"
    "___________________________________________________________________\n"
    "flatten (Flatten)              (None, 1600)              0\n"
    "___________________________________________________________________\n"
    "dense (Dense)                  (None, 64)                102464\n"
    "___________________________________________________________________\n"
    "dense_1 (Dense)                (None, 10)                650\n"
    "===================================================================\n"
    "Total params: 121,930\n"
    "Trainable params: 121,930\n"
    "Non-trainable params: 0\n"
    "___________________________________________________________________\n";

START_TEST(test_article_cnn_summary)
{
    tg_model *m = article_cnn(TG_F32, 42);
    ck_assert_int_eq(tg_model_layer_count(m), 7);
    ck_assert_int_eq(tg_model_param_count(m), 121930);
    static const int64_t shapes[7][4] = {{32, 26, 26}, {32, 13, 13}, {64, 11, 11}, {64, 5, 5},
                                         {1600}, {64}, {10}};
    static const int ndims[7] = {3, 3, 3, 3, 1, 1, 1};
    static const int64_t counts[7] = {320, 0, 18496, 0, 0, 102464, 650};
    static const char *names[7] = {"conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                                   "flatten", "dense", "dense_1"};
    for (int i = 0; i < 7; i++) {
        tg_layer *l = tg_model_layer(m, i);
        int nd;
        const int64_t *s = tg_layer_output_shape(l, &nd);
        ck_assert_int_eq(nd, ndims[i]);
        for (int d = 0; d < nd; d++)
            ck_assert_int_eq(s[d], shapes[i][d]);
        ck_assert_int_eq(tg_layer_param_count(l), counts[i]);
        ck_assert_str_eq(tg_layer_name(l), names[i]);
    }
    ck_assert_str_eq(tg_layer_type(tg_model_layer(m, 1)), "MaxPooling2D");
    ck_assert_ptr_null(tg_model_layer(m, 7));
    char *text = summary_text(m);
    ck_assert_str_eq(text, article_summary);
    free(text);

    // A forward pass on a batch gives (N, 10) rows of probabilities.
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(9);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(2, 1, 28, 28), 0, 1, &rng);
    tg_tensor *y = tg_model_forward(m, x, false);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_ndim(y), 2);
    ck_assert_int_eq(tg_tensor_dim(y, 0), 2);
    ck_assert_int_eq(tg_tensor_dim(y, 1), 10);
    for (int r = 0; r < 2; r++) {
        double sum = 0;
        for (int c = 0; c < 10; c++)
            sum += flat(y, r * 10 + c);
        ck_assert_double_eq_tol(sum, 1.0, 1e-5);
    }
    // Backward reaches every parameter.
    ASSERT_OK(tg_backward(tg_sum(tg_log(y), NULL, 0, false)));
    int n;
    tg_tensor *const *ps = tg_model_params(m, &n);
    for (int i = 0; i < n; i++)
        ck_assert_ptr_nonnull(tg_tensor_grad(ps[i]));
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_summary_empty_and_wide)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(4), TG_SCHEME_KERAS, 1);
    char *text = summary_text(m);
    ck_assert(strstr(text, "Total params: 0\n") != NULL);
    free(text);
    int nd;
    const int64_t *s = tg_model_output_shape(m, &nd);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(s[0], 4);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(1000000, TG_ACT_NONE)));
    ASSERT_OK(tg_model_add(m, tg_layer_activation(TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_activation(TG_ACT_RELU)));
    text = summary_text(m);
    ck_assert(strstr(text, "dense (Dense)                (None, 1000000)           5000000\n"));
    ck_assert(strstr(text, "activation_1 (Activation)    (None, 1000000)           0\n"));
    ck_assert(strstr(text, "Total params: 5,000,000\n"));
    free(text);
    tg_model_free(m);
}
END_TEST

START_TEST(test_dense_values)
{
    // y = x @ W + b with W (in, units).
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(3), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(2, TG_ACT_RELU)));
    int n;
    tg_tensor *const *p = tg_layer_params(tg_model_layer(m, 0), &n);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(tg_tensor_dim(p[0], 0), 3);
    ck_assert_int_eq(tg_tensor_dim(p[0], 1), 2);
    set_values(p[0], (double[]){1, -1, 2, 0, 0.5, 1});
    set_values(p[1], (double[]){0.5, -10});
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3), (double[]){1, 2, 3, -1, 0, 2});
    tg_tensor *y = tg_model_forward(m, x, false);
    ck_assert_ptr_nonnull(y);
    // row 0: [1 + 4 + 1.5 + 0.5, -1 + 0 + 3 - 10] -> relu
    ck_assert_double_eq_tol(flat(y, 0), 7.0, 1e-12);
    ck_assert_double_eq_tol(flat(y, 1), 0.0, 1e-12);
    ck_assert_double_eq_tol(flat(y, 2), -1 + 1 + 0.5, 1e-12);
    ck_assert_double_eq_tol(flat(y, 3), 0.0, 1e-12);
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* Direct convolution for the reference: x (N,C,H,W), w (OC,C,KH,KW). */
static double conv_ref(const tg_tensor *x, const tg_tensor *w, const tg_tensor *b, int64_t n,
                       int64_t oc, int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t ph,
                       int64_t pw, int64_t dh, int64_t dw)
{
    const int64_t *xs = tg_tensor_shape(x), *ws = tg_tensor_shape(w);
    double acc = b ? flat(b, oc) : 0;
    for (int64_t c = 0; c < xs[1]; c++)
        for (int64_t i = 0; i < ws[2]; i++)
            for (int64_t j = 0; j < ws[3]; j++) {
                int64_t h = oh * sh - ph + i * dh, ww = ow * sw - pw + j * dw;
                if (h < 0 || h >= xs[2] || ww < 0 || ww >= xs[3])
                    continue;
                acc += flat(x, ((n * xs[1] + c) * xs[2] + h) * xs[3] + ww) *
                       flat(w, ((oc * ws[1] + c) * ws[2] + i) * ws[3] + j);
            }
    return acc;
}

START_TEST(test_conv2d_values)
{
    // Strided, dilated, SAME-padded conv with bias against the direct sum.
    struct {
        tg_padding pad;
        int64_t ph, pw, sh, sw, dh, dw, oh, ow, top, left;
    } cases[] = {
        {TG_PAD_VALID, 0, 0, 1, 1, 1, 1, 5, 6, 0, 0},
        // TF: rows total 3*2+3-7 = 2 -> 1/1; cols 3*2+3-8 = 1 -> 0/1
        {TG_PAD_SAME, 0, 0, 2, 2, 1, 1, 4, 4, 1, 0},
        {TG_PAD_SAME, 0, 0, 1, 1, 1, 1, 7, 8, 1, 1},
        {TG_PAD_EXPLICIT, 2, 1, 1, 2, 2, 1, 7, 4, 2, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tg_conv2d_opts o = tg_conv2d_defaults();
        o.padding = cases[c].pad;
        o.pad_h = cases[c].ph;
        o.pad_w = cases[c].pw;
        o.stride_h = cases[c].sh;
        o.stride_w = cases[c].sw;
        o.dilation_h = cases[c].dh;
        o.dilation_w = cases[c].dw;
        o.bias_init = TG_INIT(HE_UNIFORM); // non-zero biases
        tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2, 7, 8), TG_SCHEME_KERAS, 3);
        ASSERT_OK(tg_model_add(m, tg_layer_conv2d_ex(3, 3, 3, TG_ACT_NONE, &o)));
        int nd;
        const int64_t *s = tg_model_output_shape(m, &nd);
        ck_assert_int_eq(nd, 3);
        ck_assert_int_eq(s[0], 3);
        ck_assert_msg(s[1] == cases[c].oh && s[2] == cases[c].ow, "case %zu: %lldx%lld", c,
                      (long long)s[1], (long long)s[2]);
        int n;
        tg_tensor *const *p = tg_model_params(m, &n);
        tg_tape *tape = tg_tape_new();
        tg_rng rng = tg_rng_seeded(4);
        tg_tensor *x = tg_tensor_uniform(TG_F64, TG_SHAPE(2, 2, 7, 8), -1, 1, &rng);
        tg_tensor *y = tg_model_forward(m, x, false);
        ck_assert_msg(y != NULL, "%s", tg_last_error());
        int64_t k = 0;
        for (int64_t b = 0; b < 2; b++)
            for (int64_t oc = 0; oc < 3; oc++)
                for (int64_t i = 0; i < s[1]; i++)
                    for (int64_t j = 0; j < s[2]; j++, k++) {
                        double want = conv_ref(x, p[0], p[1], b, oc, i, j, cases[c].sh,
                                               cases[c].sw, cases[c].top, cases[c].left,
                                               cases[c].dh, cases[c].dw);
                        ck_assert_msg(fabs(flat(y, k) - want) < 1e-12,
                                      "case %zu at %lld: %g vs %g", c, (long long)k,
                                      flat(y, k), want);
                    }
        tg_tensor_free(x);
        tg_tape_free(tape);
        tg_model_free(m);
    }
}
END_TEST

START_TEST(test_pool_values)
{
    // 1 channel 5x5 holding 0..24: max and average 2x2 windows, valid and same.
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_arange(TG_F64, 0, 25, 1);
    tg_tensor *x4 = tg_reshape(x, TG_SHAPE(1, 1, 5, 5));
    struct {
        bool max;
        tg_padding pad;
        int64_t out;
        double first, last;
    } cases[] = {
        {true, TG_PAD_VALID, 2, 6, 18},         // windows rows 0-1 and 2-3
        {false, TG_PAD_VALID, 2, 3, 15},        // mean(0,1,5,6) = 3; mean(12,13,17,18)
        {true, TG_PAD_SAME, 3, 6, 24},          // last window only holds 24
        {false, TG_PAD_SAME, 3, 3, 24},         // padding is not counted
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tg_pool2d_opts o = tg_pool2d_defaults(2);
        o.padding = cases[c].pad;
        tg_model *m = tg_model_new(TG_F64, TG_SHAPE(1, 5, 5), TG_SCHEME_KERAS, 1);
        ASSERT_OK(tg_model_add(m, cases[c].max ? tg_layer_maxpool2d_ex(&o)
                                               : tg_layer_avgpool2d_ex(&o)));
        tg_tensor *y = tg_model_forward(m, x4, false);
        ck_assert_msg(y != NULL, "%s", tg_last_error());
        ck_assert_int_eq(tg_tensor_dim(y, 2), cases[c].out);
        ck_assert_int_eq(tg_tensor_dim(y, 3), cases[c].out);
        int64_t last = tg_tensor_numel(y) - 1;
        ck_assert_msg(flat(y, 0) == cases[c].first && flat(y, last) == cases[c].last,
                      "case %zu: %g .. %g", c, flat(y, 0), flat(y, last));
        tg_model_free(m);
    }
    // A 3x3 window with stride 1 and explicit padding 1 keeps the size.
    tg_pool2d_opts o = {.kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                        .padding = TG_PAD_EXPLICIT, .pad_h = 1, .pad_w = 1};
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(1, 5, 5), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d_ex(&o)));
    tg_tensor *y = tg_model_forward(m, x4, false);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_dim(y, 3), 5);
    ck_assert_double_eq(flat(y, 0), 6);
    ck_assert_double_eq(flat(y, 24), 24);
    tg_model_free(m);
    tg_tensor_free(x);
    tg_tape_free(tape);
}
END_TEST

/* A Conv2D with ReLU followed by MaxPool2D runs as one op in a Sequential
 * model (one node instead of two); the output and every gradient must be
 * the bytes of the two layers called one after the other, and so must the
 * forward without grad (the relay). A Conv2D with ReLU not followed by a
 * pool, and one followed by an average pool, stay single. */
START_TEST(test_conv_relu_maxpool_pair)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(2, 12, 11), TG_SCHEME_KERAS, 5);
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.bias_init = TG_INIT(HE_UNIFORM); // non-zero biases: the ReLU cuts some
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d_ex(4, 3, 3, TG_ACT_RELU, &o)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d_ex(3, 2, 2, TG_ACT_RELU, &o)));
    ASSERT_OK(tg_model_add(m, tg_layer_avgpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(5, TG_ACT_NONE)));
    int n_params, n_layers = tg_model_layer_count(m);
    tg_tensor *const *params = tg_model_params(m, &n_params);
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(6);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(3, 2, 12, 11), -1, 1, &rng);
    tg_tensor *r = tg_tensor_uniform(TG_F32, TG_SHAPE(3, 5), -1, 1, &rng);
    tg_tensor *y[2], *grads[2][8];
    size_t nodes[3] = {tg_tape_size(tape)};
    y[0] = tg_model_forward(m, x, false);
    nodes[1] = tg_tape_size(tape);
    y[1] = x;
    for (int i = 0; i < n_layers && y[1]; i++)
        y[1] = tg_layer_call(m, tg_model_layer(m, i), y[1]);
    nodes[2] = tg_tape_size(tape);
    ck_assert_msg(y[0] && y[1], "%s", tg_last_error());
    ck_assert_uint_eq(nodes[2] - nodes[1], nodes[1] - nodes[0] + 1);
    ck_assert_int_eq(memcmp(tg_tensor_data(y[0]), tg_tensor_data(y[1]), 15 * sizeof(float)), 0);
    for (int k = 0; k < 2; k++)
        ASSERT_OK(tg_grad(1, &y[k], &r, n_params, params, grads[k], TG_RETAIN_GRAPH));
    for (int i = 0; i < n_params; i++)
        ck_assert_msg(memcmp(tg_tensor_data(grads[0][i]), tg_tensor_data(grads[1][i]),
                             (size_t)tg_tensor_numel(params[i]) * sizeof(float)) == 0,
                      "gradient of parameter %d differs", i);
    bool was = tg_set_grad_enabled(false);
    tg_tensor *relayed = tg_model_forward(m, x, false);
    tg_set_grad_enabled(was);
    ck_assert_msg(relayed, "%s", tg_last_error());
    ck_assert_int_eq(memcmp(tg_tensor_data(relayed), tg_tensor_data(y[1]), 15 * sizeof(float)),
                     0);
    tg_tensor_free(x);
    tg_tensor_free(r);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_logits_consistency)
{
    // softmax(forward(x, true)) == forward(x, false), for a Dense softmax and
    // for a trailing Activation(softmax); sigmoid likewise.
    for (int variant = 0; variant < 3; variant++) {
        tg_model *m = tg_model_new(TG_F64, TG_SHAPE(6), TG_SCHEME_KERAS, 11);
        ASSERT_OK(tg_model_add(m, tg_layer_dense(8, TG_ACT_TANH)));
        if (variant == 0) {
            ASSERT_OK(tg_model_add(m, tg_layer_dense(5, TG_ACT_SOFTMAX)));
        } else if (variant == 1) {
            ASSERT_OK(tg_model_add(m, tg_layer_dense(5, TG_ACT_NONE)));
            ASSERT_OK(tg_model_add(m, tg_layer_activation(TG_ACT_SOFTMAX)));
        } else {
            ASSERT_OK(tg_model_add(m, tg_layer_dense(5, TG_ACT_SIGMOID)));
        }
        tg_tape *tape = tg_tape_new();
        tg_rng rng = tg_rng_seeded(2);
        tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(4, 6), 0, 2, &rng);
        tg_tensor *probs = tg_model_forward(m, x, false);
        tg_tensor *logits = tg_model_forward(m, x, true);
        tg_tensor *again = variant == 2 ? tg_sigmoid(logits) : tg_softmax(logits, 1);
        ck_assert_ptr_nonnull(again);
        for (int i = 0; i < 20; i++) {
            ck_assert_double_eq_tol(flat(again, i), flat(probs, i), 1e-14);
            ck_assert(flat(logits, i) != flat(probs, i));
        }
        // log_softmax(logits) is log(probs).
        if (variant < 2) {
            tg_tensor *ls = tg_log_softmax(logits, 1);
            for (int i = 0; i < 20; i++)
                ck_assert_double_eq_tol(flat(ls, i), log(flat(probs, i)), 1e-12);
        }
        tg_tensor_free(x);
        tg_tape_free(tape);
        tg_model_free(m);
    }
    // A softmax that is not last is kept in logits mode.
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(3), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(3, TG_ACT_SOFTMAX)));
    ASSERT_OK(tg_model_add(m, tg_layer_activation(TG_ACT_TANH)));
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_ones(TG_F64, TG_SHAPE(1, 3));
    tg_tensor *a = tg_model_forward(m, x, true), *b = tg_model_forward(m, x, false);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(flat(a, i), flat(b, i));
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_dropout_modes)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(1000), TG_SCHEME_KERAS, 8);
    ASSERT_OK(tg_model_add(m, tg_layer_dropout(0.25)));
    ck_assert(tg_model_training(m));
    ck_assert_int_eq(tg_model_param_count(m), 0);
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_ones(TG_F64, TG_SHAPE(4, 1000));
    ASSERT_OK(tg_tensor_set_requires_grad(x, true));
    tg_tensor *y = tg_model_forward(m, x, false);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    int zeros = 0;
    for (int i = 0; i < 4000; i++) {
        double v = flat(y, i);
        ck_assert_msg(v == 0.0 || fabs(v - 1 / 0.75) < 1e-12, "value %g", v);
        zeros += v == 0.0;
    }
    ck_assert_msg(zeros > 900 && zeros < 1100, "%d zeros of 4000", zeros);
    // The gradient follows the mask.
    ASSERT_OK(tg_backward(tg_sum(y, NULL, 0, false)));
    tg_tensor *g = tg_tensor_grad(x);
    for (int i = 0; i < 4000; i++)
        ck_assert_double_eq_tol(flat(g, i), flat(y, i), 1e-12);
    // Two training passes draw different masks.
    tg_tensor *y2 = tg_model_forward(m, x, false);
    int same = 0;
    for (int i = 0; i < 4000; i++)
        same += flat(y2, i) == flat(y, i);
    ck_assert_int_lt(same, 4000);
    // Evaluation: the identity.
    tg_model_set_training(m, false);
    ck_assert(!tg_model_training(m));
    tg_tensor *e = tg_model_forward(m, x, false);
    for (int i = 0; i < 4000; i++)
        ck_assert_double_eq(flat(e, i), 1.0);
    tg_model_set_training(m, true);
    tg_tensor *t = tg_model_forward(m, x, false);
    zeros = 0;
    for (int i = 0; i < 4000; i++)
        zeros += flat(t, i) == 0.0;
    ck_assert_int_gt(zeros, 0);
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* ---- gradient checks through whole models ---- */

static tg_tensor *model_fn(tg_tensor *const *in, int n, void *ctx)
{
    return tg_model_forward(ctx, in[0], false);
}

START_TEST(test_gradcheck_dense_model)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(4), TG_SCHEME_KERAS, 21);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(5, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(4, TG_ACT_SIGMOID)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(3, TG_ACT_SOFTMAX)));
    tg_rng rng = tg_rng_seeded(5);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 4), 0, 1, &rng);
    tg_gradcheck_report rep = {0};
    tg_status st = tg_gradcheck(model_fn, m, 1, &x, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s / %s", rep.message, tg_last_error());
    ck_assert_int_eq(rep.checked, 2 * 4 * 2 * 3);
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

START_TEST(test_gradcheck_cnn_model)
{
    // Conv (same padding, stride 2) -> max pool -> conv -> avg pool -> flatten -> dense.
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2, 9, 9), TG_SCHEME_PYTORCH, 22);
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.padding = TG_PAD_SAME;
    o.stride_h = o.stride_w = 2;
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d_ex(3, 3, 3, TG_ACT_TANH, &o)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(2, 1, 1, TG_ACT_SIGMOID)));
    ASSERT_OK(tg_model_add(m, tg_layer_avgpool2d(2)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(3, TG_ACT_SOFTMAX)));
    int nd;
    const int64_t *s = tg_model_output_shape(m, &nd);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(s[0], 3);
    ck_assert_int_eq(tg_tensor_dim(tg_model_params(m, &nd)[4], 0), 2); // dense in = 2*1*1
    tg_rng rng = tg_rng_seeded(6);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 2, 9, 9), 0, 1, &rng);
    tg_gradcheck_report rep = {0};
    tg_status st = tg_gradcheck(model_fn, m, 1, &x, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s / %s", rep.message, tg_last_error());
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

/* ---- training ---- */

START_TEST(test_train_xor)
{
    // Dense 8 tanh, Dense 1 sigmoid, Adam (optim.h), tg_bce_with_logits_loss on
    // the logits (the final sigmoid is skipped).
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(8, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(1, TG_ACT_SIGMOID)));
    tg_tensor *x = tg_tensor_from_doubles(TG_F32, TG_SHAPE(4, 2), (double[]){0, 0, 0, 1, 1, 0,
                                                                          1, 1});
    tg_tensor *y = tg_tensor_from_doubles(TG_F32, TG_SHAPE(4, 1), (double[]){0, 1, 1, 0});
    tg_tape *tape = tg_tape_new();
    int n;
    tg_tensor *const *params = tg_model_params(m, &n);
    tg_adam_opts ao = tg_adam_defaults();
    ao.lr = 0.05;
    tg_optim *opt = tg_optim_adam(params, n, &ao);
    ck_assert_msg(opt != NULL, "%s", tg_last_error());
    double loss = INFINITY;
    int step;
    for (step = 0; step < 200 && loss >= 0.05; step++) { // seeds 1..12: 34-68 steps
        tg_tensor *z = tg_model_forward(m, x, true);
        tg_tensor *l = tg_bce_with_logits_loss(z, y, TG_REDUCE_MEAN);
        ck_assert_msg(l != NULL, "%s", tg_last_error());
        loss = tg_tensor_item(l);
        ASSERT_OK(tg_backward(l));
        ASSERT_OK(tg_optim_step(opt));
        tg_optim_zero_grad(opt);
        tg_tape_reset(tape);
    }
    ck_assert_msg(loss < 0.05, "XOR loss %g after %d steps", loss, step);
    // The probabilities round to XOR.
    tg_tensor *p = tg_model_forward(m, x, false);
    for (int i = 0; i < 4; i++)
        ck_assert_msg((flat(p, i) > 0.5) == (i == 1 || i == 2), "p[%d] = %g", i, flat(p, i));
    tg_optim_free(opt);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_train_xor_sgd)
{
    // The same with plain SGD on tg_tensor_grad, float64, and the loss written
    // out: mean(softplus(z) - y*z) = mean(-y log p - (1-y) log(1-p)), p = sigmoid(z).
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2), TG_SCHEME_KERAS, 3);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(8, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(1, TG_ACT_SIGMOID)));
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(4, 2), (double[]){0, 0, 0, 1, 1, 0,
                                                                          1, 1});
    tg_tensor *y = tg_tensor_from_doubles(TG_F64, TG_SHAPE(4, 1), (double[]){0, 1, 1, 0});
    tg_tape *tape = tg_tape_new();
    double loss = INFINITY;
    int step;
    for (step = 0; step < 400 && loss >= 0.05; step++) { // seeds 1..12: 64-115 steps
        tg_tensor *z = tg_model_forward(m, x, true);
        tg_tensor *l = tg_mean(tg_sub(tg_softplus(z), tg_mul(y, z)), NULL, 0, false);
        ck_assert_msg(l != NULL, "%s", tg_last_error());
        loss = tg_tensor_item(l);
        ASSERT_OK(tg_backward(l));
        sgd_step(m, 1.0);
        tg_tape_reset(tape);
    }
    ck_assert_msg(loss < 0.05, "XOR loss %g after %d steps", loss, step);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_train_regression)
{
    // y = 3 x1 - 2 x2 + 1 + noise(0.05) with one Dense unit: the weights and
    // the MSE approach the truth and the noise level.
    enum { N = 256 };
    tg_rng rng = tg_rng_seeded(12);
    double xs[N * 2], ys[N];
    for (int i = 0; i < N; i++) {
        xs[2 * i] = 2 * tg_rng_uniform(&rng) - 1;
        xs[2 * i + 1] = 2 * tg_rng_uniform(&rng) - 1;
        ys[i] = 3 * xs[2 * i] - 2 * xs[2 * i + 1] + 1 + 0.05 * tg_rng_normal(&rng);
    }
    tg_tensor *x = tg_tensor_from_doubles(TG_F32, TG_SHAPE(N, 2), xs);
    tg_tensor *y = tg_tensor_from_doubles(TG_F32, TG_SHAPE(N, 1), ys);
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(2), TG_SCHEME_PYTORCH, 2);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(1, TG_ACT_NONE)));
    tg_tape *tape = tg_tape_new();
    double mse = INFINITY;
    for (int step = 0; step < 300; step++) {
        tg_tensor *d = tg_sub(tg_model_forward(m, x, false), y);
        tg_tensor *l = tg_mean(tg_mul(d, d), NULL, 0, false);
        ck_assert_msg(l != NULL, "%s", tg_last_error());
        mse = tg_tensor_item(l);
        ASSERT_OK(tg_backward(l));
        sgd_step(m, 0.3);
        tg_tape_reset(tape);
    }
    ck_assert_msg(mse < 0.004, "MSE %g", mse);
    int n;
    tg_tensor *const *p = tg_model_params(m, &n);
    ck_assert_double_eq_tol(flat(p[0], 0), 3.0, 0.02);
    ck_assert_double_eq_tol(flat(p[0], 1), -2.0, 0.02);
    ck_assert_double_eq_tol(flat(p[1], 0), 1.0, 0.02);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_train_cnn_overfit)
{
    // The article's CNN memorises 8 random images with tg_cross_entropy on the
    // logits and Adam: the conv, pool and dense gradients all point downhill.
    tg_model *m = article_cnn(TG_F32, 4);
    tg_rng rng = tg_rng_seeded(10);
    tg_tensor *x = tg_tensor_uniform(TG_F32, TG_SHAPE(8, 1, 28, 28), 0, 1, &rng);
    const int64_t labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int n;
    tg_tensor *const *params = tg_model_params(m, &n);
    tg_adam_opts ao = tg_adam_defaults();
    ao.lr = 3e-3;
    tg_optim *opt = tg_optim_adam(params, n, &ao);
    ck_assert_msg(opt != NULL, "%s", tg_last_error());
    tg_tape *tape = tg_tape_new();
    double first = NAN, loss = NAN;
    for (int step = 0; step < 40; step++) {
        tg_tensor *l = tg_cross_entropy(tg_model_forward(m, x, true), labels, TG_REDUCE_MEAN);
        ck_assert_msg(l != NULL, "%s", tg_last_error());
        loss = tg_tensor_item(l);
        if (step == 0)
            first = loss;
        ASSERT_OK(tg_backward(l));
        ASSERT_OK(tg_optim_step(opt));
        tg_optim_zero_grad(opt);
        tg_tape_reset(tape);
    }
    ck_assert_double_eq_tol(first, log(10.0), 0.2); // near-uniform predictions at the start
    ck_assert_msg(loss < 0.02, "loss %g -> %g", first, loss); // seeds 1..6 end below 0.002
    tg_tensor *p = tg_model_forward(m, x, false);
    ck_assert_double_eq(tg_accuracy(p, labels, 8), 1.0);
    tg_optim_free(opt);
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_layer_constructor_errors)
{
    ASSERT_NULL_FAIL(tg_layer_dense(0, TG_ACT_NONE), TG_EINVAL, "tg_layer_dense: units must be "
                                                                 ">= 1 (got 0)");
    ASSERT_NULL_FAIL(tg_layer_dense(3, (tg_activation)42), TG_EINVAL, "unknown activation 42");
    tg_dense_opts d = tg_dense_defaults();
    d.kernel_init = TG_INIT_CONST(INFINITY);
    ASSERT_NULL_FAIL(tg_layer_dense_ex(3, TG_ACT_NONE, &d), TG_EINVAL, "invalid kernel");
    ASSERT_NULL_FAIL(tg_layer_conv2d(0, 3, 3, TG_ACT_NONE), TG_EINVAL, "filters must be >= 1");
    ASSERT_NULL_FAIL(tg_layer_conv2d(4, 3, -1, TG_ACT_NONE), TG_EINVAL, "kernel 3x-1");
    tg_conv2d_opts c = tg_conv2d_defaults();
    c.stride_w = 0;
    ASSERT_NULL_FAIL(tg_layer_conv2d_ex(4, 3, 3, TG_ACT_NONE, &c), TG_EINVAL, "stride 1x0");
    c = tg_conv2d_defaults();
    c.dilation_h = -2;
    ASSERT_NULL_FAIL(tg_layer_conv2d_ex(4, 3, 3, TG_ACT_NONE, &c), TG_EINVAL, "dilation -2x1");
    c = tg_conv2d_defaults();
    c.padding = TG_PAD_EXPLICIT;
    c.pad_h = -1;
    ASSERT_NULL_FAIL(tg_layer_conv2d_ex(4, 3, 3, TG_ACT_NONE, &c), TG_EINVAL, "padding -1x0");
    c.padding = (tg_padding)7;
    ASSERT_NULL_FAIL(tg_layer_conv2d_ex(4, 3, 3, TG_ACT_NONE, &c), TG_EINVAL,
                     "unknown padding 7");
    ASSERT_NULL_FAIL(tg_layer_maxpool2d(0), TG_EINVAL, "tg_layer_maxpool2d: window 0x0");
    ASSERT_NULL_FAIL(tg_layer_avgpool2d(-3), TG_EINVAL, "tg_layer_avgpool2d: window -3x-3");
    ASSERT_NULL_FAIL(tg_layer_maxpool2d_ex(NULL), TG_EINVAL, "opts is NULL");
    tg_pool2d_opts p = tg_pool2d_defaults(2);
    p.padding = TG_PAD_EXPLICIT;
    p.pad_w = 2;
    ASSERT_NULL_FAIL(tg_layer_avgpool2d_ex(&p), TG_EINVAL, "at most half the window");
    p = tg_pool2d_defaults(2);
    p.stride_h = -1;
    ASSERT_NULL_FAIL(tg_layer_maxpool2d_ex(&p), TG_EINVAL, "stride -1x2");
    ASSERT_NULL_FAIL(tg_layer_dropout(1.0), TG_EINVAL, "tg_layer_dropout: rate must be in "
                                                        "[0, 1) (got 1)");
    ASSERT_NULL_FAIL(tg_layer_dropout(-0.1), TG_EINVAL, "(got -0.1)");
    ASSERT_NULL_FAIL(tg_layer_dropout(NAN), TG_EINVAL, "rate must be");
    ASSERT_NULL_FAIL(tg_layer_activation((tg_activation)-1), TG_EINVAL, "unknown activation");
    // A layer never added is freed by tg_layer_free; NULL is ignored.
    tg_layer_free(tg_layer_flatten());
    tg_layer_free(NULL);
    tg_layer *l = tg_layer_dense(3, TG_ACT_NONE);
    ck_assert_str_eq(tg_layer_name(l), "dense");
    ck_assert_ptr_null(tg_layer_output_shape(l, NULL));
    ck_assert_int_eq(tg_layer_param_count(l), 0);
    tg_layer_free(l);
}
END_TEST

START_TEST(test_model_new_errors)
{
    ASSERT_NULL_FAIL(tg_model_new((tg_dtype)5, TG_SHAPE(3), TG_SCHEME_KERAS, 1), TG_EINVAL,
                     "tg_model_new: invalid dtype 5");
    ASSERT_NULL_FAIL(tg_model_new(TG_F32, 0, NULL, TG_SCHEME_KERAS, 1), TG_EINVAL,
                     "input ndim 0 outside 1..7");
    ASSERT_NULL_FAIL(tg_model_new(TG_F32, 2, NULL, TG_SCHEME_KERAS, 1), TG_EINVAL,
                     "input_shape is NULL");
    ASSERT_NULL_FAIL(tg_model_new(TG_F32, TG_SHAPE(3, 0), TG_SCHEME_KERAS, 1), TG_EINVAL,
                     "input dimension 1 is 0");
    ASSERT_NULL_FAIL(tg_model_new(TG_F32, TG_SHAPE(3), (tg_init_scheme)9, 1), TG_EINVAL,
                     "unknown init scheme 9");
    tg_model_free(NULL);
    ck_assert_int_eq(tg_model_param_count(NULL), 0);
    int n = 5;
    ck_assert_ptr_null(tg_model_params(NULL, &n));
    ck_assert_int_eq(n, 0);
    ASSERT_FAIL(tg_model_summary(NULL, stdout), TG_EINVAL, "tg_model_summary: model is NULL");
}
END_TEST

START_TEST(test_model_add_errors)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 1);
    tg_clear_error();
    ASSERT_FAIL(tg_model_add(m, NULL), TG_EINVAL, "tg_model_add: layer 0 is NULL");
    // A failed constructor's reason is kept.
    ASSERT_FAIL(tg_model_add(m, tg_layer_dense(-4, TG_ACT_NONE)), TG_EINVAL,
                "tg_model_add: layer 0 is NULL: tg_layer_dense: units must be >= 1 (got -4)");
    // NULL model: the layer is freed (ASan would report it otherwise).
    ASSERT_FAIL(tg_model_add(NULL, tg_layer_flatten()), TG_EINVAL, "model is NULL");
    // Dense on an image without Flatten.
    ASSERT_FAIL(tg_model_add(m, tg_layer_dense(10, TG_ACT_NONE)), TG_ESHAPE,
                "tg_model_add: layer 0 (dense, Dense): Dense needs a 1-D input per sample, "
                "got (None, 1, 28, 28); add a Flatten layer before it");
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(8, 5, 5, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_maxpool2d(2)));
    // Kernel larger than the input: 12x12 after the pool.
    ASSERT_FAIL(tg_model_add(m, tg_layer_conv2d(4, 13, 3, TG_ACT_NONE)), TG_ESHAPE,
                "tg_model_add: layer 2 (conv2d_1, Conv2D): kernel 13x3");
    ck_assert(strstr(tg_last_error(), "(None, 8, 12, 12)") != NULL);
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.dilation_h = 6; // effective 13 rows
    ASSERT_FAIL(tg_model_add(m, tg_layer_conv2d_ex(4, 3, 3, TG_ACT_NONE, &o)), TG_ESHAPE,
                "dilation 6x1");
    ASSERT_FAIL(tg_model_add(m, tg_layer_maxpool2d(13)), TG_ESHAPE,
                "tg_model_add: layer 2 (max_pooling2d_1, MaxPooling2D): window 13x13");
    // Failed adds left the model as it was.
    ck_assert_int_eq(tg_model_layer_count(m), 2);
    ck_assert_int_eq(tg_model_param_count(m), 8 * 25 + 8);
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    // Conv and pools need (C, H, W).
    ASSERT_FAIL(tg_model_add(m, tg_layer_conv2d(4, 3, 3, TG_ACT_NONE)), TG_ESHAPE,
                "Conv2D needs a 3-D (C, H, W) input per sample, got (None, 1152)");
    ASSERT_FAIL(tg_model_add(m, tg_layer_avgpool2d(2)), TG_ESHAPE,
                "AveragePooling2D needs a 3-D (C, H, W) input per sample, got (None, 1152)");
    tg_layer *d = tg_layer_dense(3, TG_ACT_NONE);
    ASSERT_OK(tg_model_add(m, d));
    ck_assert_str_eq(tg_layer_name(d), "dense");
    // Adding a layer twice: refused, nothing freed.
    ASSERT_FAIL(tg_model_add(m, d), TG_ESTATE, "layer 'dense' already belongs to a model");
    tg_layer_free(d); // ignored: the model owns it
    ck_assert_int_eq(tg_model_layer_count(m), 4);
    tg_model_free(m);

    // Conv on a 1-D input.
    m = tg_model_new(TG_F64, TG_SHAPE(10), TG_SCHEME_KERAS, 1);
    ASSERT_FAIL(tg_model_add(m, tg_layer_conv2d(4, 3, 3, TG_ACT_NONE)), TG_ESHAPE,
                "tg_model_add: layer 0 (conv2d, Conv2D): Conv2D needs a 3-D (C, H, W) input per "
                "sample, got (None, 10)");
    tg_model_free(m);
}
END_TEST

START_TEST(test_model_forward_errors)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 1);
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_zeros(TG_F32, TG_SHAPE(3, 1, 28, 27));
    tg_tensor *good = tg_tensor_zeros(TG_F32, TG_SHAPE(3, 1, 28, 28));
    tg_tensor *x64 = tg_tensor_zeros(TG_F64, TG_SHAPE(3, 1, 28, 28));
    tg_tensor *flat3 = tg_tensor_zeros(TG_F32, TG_SHAPE(3, 784));
    ASSERT_NULL_FAIL(tg_model_forward(m, good, false), TG_ESTATE, "the model has no layers");
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(4, TG_ACT_SOFTMAX)));
    ASSERT_NULL_FAIL(tg_model_forward(m, x, false), TG_ESHAPE,
                     "tg_model_forward: input 3x1x28x27, expected (N, 1, 28, 28)");
    ASSERT_NULL_FAIL(tg_model_forward(m, flat3, false), TG_ESHAPE, "input 3x784");
    ASSERT_NULL_FAIL(tg_model_forward(m, x64, false), TG_EDTYPE,
                     "tg_model_forward: input is float64, the model is float32");
    ASSERT_NULL_FAIL(tg_model_forward(NULL, good, false), TG_EINVAL, "model is NULL");
    tg_clear_error();
    ASSERT_NULL_FAIL(tg_model_forward(m, NULL, false), TG_EINVAL,
                     "tg_model_forward: input 0 is NULL");
    // Without a tape.
    tg_tape_set_current(NULL);
    ASSERT_NULL_FAIL(tg_model_forward(m, good, false), TG_ESTATE, "no current tape");
    tg_tape_set_current(tape);
    tg_tensor *y = tg_model_forward(m, good, false);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_dim(y, 1), 4);
    tg_tensor_free(x);
    tg_tensor_free(good);
    tg_tensor_free(x64);
    tg_tensor_free(flat3);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* With grad mode off, tg_model_forward relays the layers before the last
 * through two tapes of the model's own: the same bytes as with grad on, in
 * both output modes, and the caller's tape receives the result alone. A
 * view as the last layer's result (Flatten) is copied to the caller's tape,
 * so a first result survives a second forward pass; a view in the middle
 * followed by two layers, and Dropout in evaluation mode (its input
 * itself), keep their inputs alive until consumed. */
static void same_bytes_without_grad(tg_model *m, int64_t n, bool logits)
{
    int in_ndim = 0;
    const int64_t *in = tg_model_input_shape(m, &in_ndim);
    int64_t shape[TG_MAX_DIMS] = {n};
    for (int i = 0; i < in_ndim; i++)
        shape[i + 1] = in[i];
    tg_rng rng = tg_rng_seeded(7);
    tg_tensor *x1 = tg_tensor_uniform(TG_F32, in_ndim + 1, shape, -1, 1, &rng);
    tg_tensor *x2 = tg_tensor_uniform(TG_F32, in_ndim + 1, shape, -1, 1, &rng);
    tg_tape *tape = tg_tape_new();
    tg_model_set_training(m, false);
    tg_tensor *r1 = tg_model_forward(m, x1, logits), *r2 = tg_model_forward(m, x2, logits);
    ck_assert_ptr_nonnull(r1);
    ck_assert_ptr_nonnull(r2);
    size_t bytes = (size_t)tg_tensor_numel(r1) * sizeof(float);
    float *want1 = malloc(bytes), *want2 = malloc(bytes);
    memcpy(want1, tg_tensor_data(r1), bytes);
    memcpy(want2, tg_tensor_data(r2), bytes);
    size_t with_grad = tg_tape_high_water(tape);
    tg_tape_free(tape);

    tape = tg_tape_new();
    bool prev = tg_set_grad_enabled(false);
    tg_tensor *y1 = tg_model_forward(m, x1, logits), *y2 = tg_model_forward(m, x2, logits);
    tg_set_grad_enabled(prev);
    ck_assert_ptr_nonnull(y1);
    ck_assert_ptr_nonnull(y2);
    ck_assert(memcmp(tg_tensor_data(y1), want1, bytes) == 0);
    ck_assert(memcmp(tg_tensor_data(y2), want2, bytes) == 0);
    // Two results with their headers and op records, a few KiB (the CNN's
    // first activation alone is 432 KiB at this batch).
    size_t held = tg_tape_high_water(tape);
    ck_assert_uint_le(held, 2 * bytes + 8192);
    ck_assert_uint_lt(held, with_grad);
    tg_tape_free(tape);
    free(want1);
    free(want2);
    tg_tensor_free(x1);
    tg_tensor_free(x2);
}

START_TEST(test_forward_without_grad_relays)
{
    tg_model *m = article_cnn(TG_F32, 3);
    same_bytes_without_grad(m, 5, false);
    same_bytes_without_grad(m, 5, true);
    tg_model_free(m);
    // Flatten last: its result is a view of the convolution's.
    m = tg_model_new(TG_F32, TG_SHAPE(1, 6, 6), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(3, 3, 3, TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    same_bytes_without_grad(m, 4, false);
    tg_model_free(m);
    // A view in the middle, then two layers; Dropout passing its input on.
    m = tg_model_new(TG_F32, TG_SHAPE(2, 5, 5), TG_SCHEME_KERAS, 1);
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(4, 2, 2, TG_ACT_NONE)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(6, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_dropout(0.5)));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(3, TG_ACT_SOFTMAX)));
    same_bytes_without_grad(m, 3, false);
    same_bytes_without_grad(m, 3, true);
    tg_model_free(m);
}
END_TEST

static Suite *nn_suite(void)
{
    Suite *s = suite_create("nn");
    TCase *tc = tcase_create("init");
    tcase_add_test(tc, test_init_glorot_uniform);
    tcase_add_test(tc, test_init_uniform_bounds);
    tcase_add_test(tc, test_init_truncated_normals);
    tcase_add_test(tc, test_init_constants);
    tcase_add_test(tc, test_init_deterministic);
    tcase_add_test(tc, test_init_schemes);
    tcase_add_test(tc, test_init_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("layers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_article_cnn_summary);
    tcase_add_test(tc, test_summary_empty_and_wide);
    tcase_add_test(tc, test_dense_values);
    tcase_add_test(tc, test_conv2d_values);
    tcase_add_test(tc, test_pool_values);
    tcase_add_test(tc, test_conv_relu_maxpool_pair);
    tcase_add_test(tc, test_logits_consistency);
    tcase_add_test(tc, test_forward_without_grad_relays);
    tcase_add_test(tc, test_dropout_modes);
    suite_add_tcase(s, tc);

    tc = tcase_create("gradcheck");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gradcheck_dense_model);
    tcase_add_test(tc, test_gradcheck_cnn_model);
    suite_add_tcase(s, tc);

    tc = tcase_create("train");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_train_xor);
    tcase_add_test(tc, test_train_xor_sgd);
    tcase_add_test(tc, test_train_regression);
    tcase_add_test(tc, test_train_cnn_overfit);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_layer_constructor_errors);
    tcase_add_test(tc, test_model_new_errors);
    tcase_add_test(tc, test_model_add_errors);
    tcase_add_test(tc, test_model_forward_errors);
    suite_add_tcase(s, tc);
    return s;
}

TG_CHECK_MAIN(nn_suite)
