/* check_layers.c - the layers of issue 10 and the functional model:
 * BatchNorm1D/2D against PyTorch (pasted reference numbers), buffers,
 * LayerNorm, Embedding, Dense over sequences, Conv1D,
 * GlobalAveragePooling2D, multi-head self-attention (causal or not),
 * tg_layer_call with residual and transformer blocks, gradient checks of
 * every layer in float64 (inputs and parameters), float32 runs, summaries,
 * error paths. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "tapegrad/tapegrad.h"
#include "tg_check.h"

/* A shape as a plain array. */
#define ARR(...) ((const int64_t[]){__VA_ARGS__})

/* ---- helpers ------------------------------------------------------------ */

static char *summary_text(const tg_model *m)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ASSERT_OK(tg_model_summary(m, f));
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)len, f), len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static double at(const tg_tensor *t, int64_t i)
{
    double v = NAN;
    ASSERT_OK(tg_tensor_get_flat(t, i, &v));
    return v;
}

static void assert_close(const tg_tensor *t, const double *want, int64_t n, double tol)
{
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(at(t, i) - want[i]) <= tol * (1 + fabs(want[i])),
                      "element %lld: %.17g vs %.17g", (long long)i, at(t, i), want[i]);
}

/* The inputs of tools' PyTorch script (see test_batchnorm_vs_pytorch). */
static tg_tensor *bn_input(tg_dtype dt, int step, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = sin(0.37 * (double)i + 1.3 * step) * 2.0 + 0.25 * (double)((i * 7 + step) % 5);
    tg_tensor *t = tg_tensor_from_doubles(dt, ndim, shape, v);
    free(v);
    return t;
}

/* A forward under test: the output for x, built with the model's layers. */
typedef tg_tensor *(*fwd_fn)(tg_model *m, tg_tensor *x);

typedef struct fwd_ctx {
    tg_model *m;
    fwd_fn f;
} fwd_ctx;

static tg_tensor *fwd_tramp(tg_tensor *const *in, int n, void *ctx)
{
    fwd_ctx *c = ctx;
    return c->f(c->m, in[0]);
}

/* sum(f(x) * r) for fixed weights r (i-dependent), on the current tape. */
static tg_tensor *weighted(tg_tensor *y)
{
    if (!y)
        return NULL;
    int64_t n = tg_tensor_numel(y);
    tg_tensor *r = tg_full_like(y, 0.0);
    for (int64_t i = 0; i < n; i++)
        tg_tensor_set_flat(r, i, cos(0.7 * (double)i + 0.3));
    return tg_sum(tg_mul(y, r), NULL, 0, false);
}

/* Gradient check in float64 of f through x (tg_gradcheck) and through every
 * parameter of m (central differences on the parameter values in place). */
static void check_grads(tg_model *m, fwd_fn f, tg_tensor *x)
{
    fwd_ctx c = {m, f};
    // The first call builds functional layers before their parameters are listed.
    tg_tape *tape = tg_tape_new();
    ck_assert_ptr_nonnull(f(m, x));
    tg_tape_reset(tape);
    if (x) {
        tg_gradcheck_report rep = {0};
        tg_status st = tg_gradcheck(fwd_tramp, &c, 1, &x, NULL, &rep);
        ck_assert_msg(st == TG_OK, "input: %s / %s", rep.message, tg_last_error());
    }
    int np = 0;
    tg_tensor *const *ps = tg_model_params(m, &np);
    ck_assert_int_gt(np, 0);
    for (int k = 0; k < np; k++)
        tg_tensor_zero_grad(ps[k]);
    tg_tensor *loss = weighted(f(m, x));
    ck_assert_ptr_nonnull(loss);
    ASSERT_OK(tg_backward(loss));
    for (int k = 0; k < np; k++) {
        tg_tensor *p = ps[k];
        tg_tensor *g = tg_tensor_grad(p);
        ck_assert_msg(g != NULL, "param %d has no gradient", k);
        for (int64_t i = 0; i < tg_tensor_numel(p); i++) {
            double v = at(p, i), e = 1e-6;
            tg_tape_reset(tape);
            tg_tensor_set_flat(p, i, v + e);
            double lp = tg_tensor_item(weighted(f(m, x)));
            tg_tape_reset(tape);
            tg_tensor_set_flat(p, i, v - e);
            double lm = tg_tensor_item(weighted(f(m, x)));
            tg_tensor_set_flat(p, i, v);
            double num = (lp - lm) / (2 * e), ana = at(g, i);
            ck_assert_msg(fabs(num - ana) <= 1e-5 + 1e-4 * fabs(num),
                          "param %d element %lld: analytic %.10g numeric %.10g", k,
                          (long long)i, ana, num);
        }
        tg_tensor_zero_grad(p);
    }
    tg_tape_free(tape);
}

/* ---- BatchNorm ------------------------------------------------------------ */

typedef struct bn_ref {
    int ndim;
    int64_t shape[4];
    double train1[36], eval[36], mean[3], var[3];
} bn_ref;

/* Reference numbers from PyTorch 1.13 (float64), by this script:
 *
 *   def inp(step, shape):   # the same values as bn_input
 *       n = prod(shape)
 *       v = [sin(0.37*i + 1.3*step)*2 + 0.25*((i*7 + step) % 5) for i in range(n)]
 *       return torch.tensor(v, dtype=torch.float64).reshape(shape)
 *   mod = torch.nn.BatchNorm2d(C).double()    # or BatchNorm1d(C)
 *   mod.weight = [1 + 0.1*c], mod.bias = [0.05*c - 0.1]
 *   mod.train(); mod(inp(0)); y1 = mod(inp(1))
 *   mod.eval(); y2 = mod(inp(2))
 *   print(y1, y2, mod.running_mean, mod.running_var)
 */
static const bn_ref bn_refs[] = {
    {4, {3, 2, 2, 3},
     {0.98920786684257545, 1.3730151177129899, 0.72114003274608773, 0.75675926409273353,
      0.66911009337869198, -0.33588639782957347, -0.50518141097616731, -1.5168584123700564,
      -1.4710442979715093, -1.2457169571857314, -1.7431505524748261, -1.1275165772172242,
      -1.1994889452883033, -0.38893789946005541, 0.45340948068601433, 0.4076036063684968,
      1.1147925052760579, 0.82124828756260504, 1.3216907482602829, 1.5346952884914438,
      0.64862313869880883, 0.5519032106701266, -0.53582598531079295, -0.69884220227058369,
      -0.74766605402927655, -1.5546293813282017, -1.3430189057683724, -1.7994883024592481,
      -1.2273081624686013, -0.50986220603462051, -0.57325737734972204, 0.33784294611881382,
      0.28690605424003596, 1.0493292194396535, 1.6501448790515651, 1.1362582881558814},
     {1.2062832133684043, 1.0349400650970266, -0.30843286940047671, -0.473325152077822,
      -1.636705062748699, -1.4724233747563111, -1.1512810228075727, -1.6828010685655623,
      -0.74121626458152812, -0.85806880967207877, 0.35311615540822083, 1.5598025684994588,
      1.2896635441360276, 2.1331631366404418, 1.6253991388626234, 2.003786239282578,
      2.148063143907927, 0.96965427548651451, 0.89123740378210048, -0.57715927753937568,
      -0.75553823605797554, -0.78836457561354578, -1.8398032642043742, -1.3968875924040616,
      -1.7783460257738934, -0.91341466302915308, 0.11223596084079222, 0.090740470395065637,
      1.1936993928349573, 1.0725467354930394, 2.1107630193330249, 2.786411699524761,
      1.9596188318748755, 2.1129463678065972, 0.82153903185218846, 0.63084216411489735},
     {0.086302578220524451, 0.12577905145117702},
     {1.223142910959911, 1.2385676348347578}},
    {2, {4, 3},
     {0.98851184355437516, 1.32558876977934, 1.8359567547380995, 0.72698904577565182,
      0.73010764686741692, 0.26523979357539446, -0.67262985990812729, -1.0393587346275568,
      -1.2865602822092999, -1.4428710294218994, -1.2163376820192002, -0.81463626610419393},
     {1.1652209576673735, 1.0085104864744576, -0.24661073398678435, -0.57088422340094214,
      -1.6096682165528668, -1.6487268404797495, -1.1894518905981639, -1.5325386765802367,
      -0.71422874568670991, -0.91219738330734257, 0.29265597197866183, 1.8213859998172546},
     {0.17725187089314151, 0.14692424404463686, 0.082205231714263041},
     {1.1448298680659224, 1.5410696769188337, 1.2138655517148798}},
    {3, {2, 3, 4},
     {0.68235734745635601, 1.1827152296890984, 0.3328854355551315, 0.37932114807215006,
      0.30068936625506598, -0.87745585490213318, -1.054909567866599, -2.1513230373865757,
      -1.104367604114936, -0.78049846021264313, -1.4954733589209286, -0.6106058242998047,
      -2.170980361208017, -1.1142895253460119, -0.016146771976067065, -0.075862502242639129,
      0.82315746273510049, 0.47903912966346285, 0.92497851866511405, 1.1558239828365657,
      1.9422883217837552, 1.8032701263898749, 0.23984723118609308, 0.0055395681885886073},
     {1.1815318183625507, 1.007432292484385, -0.35755132858898009, -0.52509621453695132,
      -2.0203593777010269, -1.8302421241891966, -1.3665726224494423, -1.9292773687502391,
      -0.70666434961966318, -0.83793992334293244, 0.52274076232552036, 1.8783676428515144,
      1.2662534789638624, 2.1233223528289278, 1.6073900137598001, 1.9918641841374232,
      2.3596159282612188, 0.99588598175224652, 0.79578197211679369, -0.75876670130831025,
      -0.72275407210676856, -0.7596321439968845, -1.9408491810125776, -1.4432647348924121},
     {0.13611607349090796, 0.2697780593100999, 0.062856966310087192},
     {1.1847191142097397, 1.1050894766449373, 1.1678986022887392}},
};

/* Case _i of bn_refs in float64 (_i < 3) and float32 (_i >= 3), through a
 * Sequential model with the PyTorch scheme's defaults (momentum 0.1 in
 * PyTorch's terms, eps 1e-5, unbiased running variance). */
START_TEST(test_batchnorm_vs_pytorch)
{
    const bn_ref *r = &bn_refs[_i % 3];
    tg_dtype dt = _i < 3 ? TG_F64 : TG_F32;
    double tol = _i < 3 ? 1e-12 : 2e-5;
    int64_t c = r->shape[1];
    tg_model *m = tg_model_new(dt, r->ndim - 1, r->shape + 1, TG_SCHEME_PYTORCH, 1);
    ASSERT_OK(tg_model_add(m, r->ndim == 4 ? tg_layer_batchnorm2d(NULL)
                                           : tg_layer_batchnorm1d(NULL)));
    tg_layer *bn = tg_model_layer(m, 0);
    int np = 0, nb = 0;
    tg_tensor *const *ps = tg_layer_params(bn, &np);
    tg_tensor *const *bs = tg_layer_buffers(bn, &nb);
    ck_assert_int_eq(np, 2);
    ck_assert_int_eq(nb, 2);
    for (int64_t k = 0; k < c; k++) {
        ASSERT_OK(tg_tensor_set_flat(ps[0], k, 1 + 0.1 * (double)k));
        ASSERT_OK(tg_tensor_set_flat(ps[1], k, 0.05 * (double)k - 0.1));
    }
    tg_tape *tape = tg_tape_new();
    tg_tensor *x0 = bn_input(dt, 0, r->ndim, r->shape);
    tg_tensor *x1 = bn_input(dt, 1, r->ndim, r->shape);
    tg_tensor *x2 = bn_input(dt, 2, r->ndim, r->shape);
    int64_t n = tg_tensor_numel(x0);
    ck_assert_ptr_nonnull(tg_model_forward(m, x0, false));
    assert_close(tg_model_forward(m, x1, false), r->train1, n, tol);
    tg_model_set_training(m, false);
    assert_close(tg_model_forward(m, x2, false), r->eval, n, tol);
    assert_close(bs[0], r->mean, c, tol);
    assert_close(bs[1], r->var, c, tol);
    // Evaluation leaves the running statistics alone.
    assert_close(bs[1], r->var, c, tol);
    tg_tensor_free(x0);
    tg_tensor_free(x1);
    tg_tensor_free(x2);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* The Keras scheme: momentum 0.99 on the old value, eps 1e-3, biased
 * variance in the running statistic; explicit options override the scheme. */
START_TEST(test_batchnorm_keras_defaults)
{
    tg_batchnorm_opts k = tg_batchnorm_defaults(TG_SCHEME_KERAS);
    ck_assert(k.momentum == 0.99 && k.eps == 1e-3 && k.affine && !k.unbiased);
    tg_batchnorm_opts p = tg_batchnorm_defaults(TG_SCHEME_PYTORCH);
    ck_assert(p.momentum == 0.9 && p.eps == 1e-5 && p.affine && p.unbiased);
    double xv[] = {1, 2, 3, 6};
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(4, 1), xv);
    tg_tape *tape = tg_tape_new();
    for (int pass = 0; pass < 2; pass++) {
        tg_model *m = tg_model_new(TG_F64, TG_SHAPE(1), TG_SCHEME_KERAS, 1);
        tg_batchnorm_opts o = tg_batchnorm_defaults(TG_SCHEME_PYTORCH);
        ASSERT_OK(tg_model_add(m, tg_layer_batchnorm1d(pass ? &o : NULL)));
        tg_tensor *y = tg_model_forward(m, x, false);
        int nb;
        tg_tensor *const *bs = tg_layer_buffers(tg_model_layer(m, 0), &nb);
        // mean 3, biased var 3.5, unbiased 14/3
        double mom = pass ? 0.9 : 0.99, var = pass ? 14.0 / 3 : 3.5, eps = pass ? 1e-5 : 1e-3;
        ck_assert_double_eq_tol(at(bs[0], 0), (1 - mom) * 3, 1e-15);
        ck_assert_double_eq_tol(at(bs[1], 0), mom + (1 - mom) * var, 1e-15);
        ck_assert_double_eq_tol(at(y, 3), 3 / sqrt(3.5 + eps), 1e-14);
        tg_model_free(m);
    }
    tg_tape_free(tape);
    tg_tensor_free(x);
}
END_TEST

static tg_tensor *seq_fwd(tg_model *m, tg_tensor *x) { return tg_model_forward(m, x, false); }

START_TEST(test_batchnorm_gradcheck)
{
    tg_rng rng = tg_rng_seeded(3);
    for (int training = 1; training >= 0; training--) {
        tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2, 3, 2), TG_SCHEME_PYTORCH, 4);
        ASSERT_OK(tg_model_add(m, tg_layer_batchnorm2d(NULL)));
        ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
        ASSERT_OK(tg_model_add(m, tg_layer_batchnorm1d(NULL)));
        tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(3, 2, 3, 2), 0, 1, &rng);
        int np;
        tg_tensor *const *ps = tg_model_params(m, &np);
        for (int k = 0; k < np; k++) // not the trivial 1 and 0
            for (int64_t i = 0; i < tg_tensor_numel(ps[k]); i++)
                tg_tensor_set_flat(ps[k], i, 0.5 + 0.3 * (double)(k + i));
        // Running statistics away from their initial values for evaluation.
        tg_tape *tape = tg_tape_new();
        for (int s = 0; s < 3; s++) {
            ck_assert_ptr_nonnull(tg_model_forward(m, x, false));
            tg_tape_reset(tape);
        }
        tg_tape_free(tape);
        tg_model_set_training(m, training);
        check_grads(m, seq_fwd, x);
        tg_tensor_free(x);
        tg_model_free(m);
    }
}
END_TEST

START_TEST(test_batchnorm_errors)
{
    tg_batchnorm_opts o = tg_batchnorm_defaults(TG_SCHEME_KERAS);
    o.momentum = 1.5;
    ASSERT_FRESH_NULL_FAIL(tg_layer_batchnorm2d(&o), TG_EINVAL,
                           "tg_layer_batchnorm2d: momentum 1.5 outside [0, 1]");
    o.momentum = 0.5;
    o.eps = 0;
    ASSERT_FRESH_NULL_FAIL(tg_layer_batchnorm1d(&o), TG_EINVAL,
                           "tg_layer_batchnorm1d: eps 0 (need a finite eps > 0)");
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(4), TG_SCHEME_KERAS, 1);
    ASSERT_FAIL(tg_model_add(m, tg_layer_batchnorm2d(NULL)), TG_ESHAPE,
                "tg_model_add: layer 0 (batch_norm2d, BatchNorm2D): BatchNorm2D needs a 3-D "
                "(C, H, W) input per sample, got (None, 4)");
    ASSERT_OK(tg_model_add(m, tg_layer_batchnorm1d(NULL)));
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_ones(TG_F32, TG_SHAPE(1, 4));
    ASSERT_NULL_FAIL(tg_model_forward(m, x, false), TG_ESHAPE,
                     "tg_model_forward: layer 'batch_norm1d' (BatchNorm1D): training needs "
                     "more than one value per channel");
    tg_model_set_training(m, false);
    ck_assert_ptr_nonnull(tg_model_forward(m, x, false));
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* A normalised CNN: BN's four vectors per channel in the row, two of them
 * non-trainable, as Keras prints them. */
START_TEST(test_batchnorm_summary_and_buffers)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 8, 8), TG_SCHEME_KERAS, 1);
    tg_conv2d_opts co = tg_conv2d_defaults();
    co.use_bias = false;
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d_ex(4, 3, 3, TG_ACT_NONE, &co)));
    ASSERT_OK(tg_model_add(m, tg_layer_batchnorm2d(NULL)));
    ASSERT_OK(tg_model_add(m, tg_layer_activation(TG_ACT_RELU)));
    ASSERT_OK(tg_model_add(m, tg_layer_global_avgpool2d()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(3, TG_ACT_SOFTMAX)));
    int np, nb;
    tg_model_params(m, &np);
    tg_tensor *const *bs = tg_model_buffers(m, &nb);
    ck_assert_int_eq(np, 5); // conv W, gamma, beta, dense W, b
    ck_assert_int_eq(nb, 2);
    ck_assert(!tg_tensor_requires_grad(bs[0]) && !tg_tensor_requires_grad(bs[1]));
    ck_assert_int_eq(tg_model_buffer_count(m), 8);
    tg_layer *bn = tg_model_layer(m, 1);
    ck_assert_str_eq(tg_layer_buffer_name(bn, 0), "running_mean");
    ck_assert_str_eq(tg_layer_buffer_name(bn, 1), "running_var");
    ck_assert_str_eq(tg_layer_param_name(bn, 0), "weight");
    ck_assert_int_eq(tg_layer_buffer_count(bn), 8);
    ASSERT_FRESH_NULL_FAIL(tg_layer_buffer_name(bn, 2), TG_ERANGE, "index 2 outside 0..1");
    ASSERT_FRESH_NULL_FAIL(tg_layer_param_name(bn, -1), TG_ERANGE, "index -1 outside 0..1");
    char *s = summary_text(m);
    const char *want =
        "Model: \"sequential\"\n"
        "______________________________________________________________________________________\n"
        "Layer (type)                                      Output Shape              Param #\n"
        "======================================================================================\n"
        "conv2d (Conv2D)                                   (None, 4, 6, 6)           36\n"
        "______________________________________________________________________________________\n"
        "batch_norm2d (BatchNorm2D)                        (None, 4, 6, 6)           16\n"
        "______________________________________________________________________________________\n"
        "activation (Activation)                           (None, 4, 6, 6)           0\n"
        "______________________________________________________________________________________\n"
        "global_average_pooling2d (GlobalAveragePooling2D) (None, 4)                 0\n"
        "______________________________________________________________________________________\n"
        "dense (Dense)                                     (None, 3)                 15\n"
        "======================================================================================\n"
        "Total params: 67\n"
        "Trainable params: 59\n"
        "Non-trainable params: 8\n"
        "______________________________________________________________________________________\n";
    ck_assert_str_eq(s, want);
    free(s);
    // An optimizer gets the parameters only; training moves the buffers.
    tg_rng rng = tg_rng_seeded(2);
    tg_tensor *x = tg_tensor_normal(TG_F32, TG_SHAPE(5, 1, 8, 8), 0, 1, &rng);
    tg_tape *tape = tg_tape_new();
    ck_assert_ptr_nonnull(tg_model_forward(m, x, true));
    ck_assert(at(bs[1], 0) != 1.0);
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* ---- LayerNorm ------------------------------------------------------------ */

START_TEST(test_layernorm_values)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2, 3), TG_SCHEME_PYTORCH, 1);
    ASSERT_OK(tg_model_add(m, tg_layer_layernorm(1, 0, true)));
    ASSERT_OK(tg_model_add(m, tg_layer_layernorm(2, 0.5, false)));
    ck_assert_int_eq(tg_model_param_count(m), 6);
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(1, 2, 3),
                                          (double[]){1, 2, 3, 10, 20, 60});
    tg_model_set_training(m, false);
    tg_tensor *y1 = tg_layer_call(m, tg_model_layer(m, 0), x);
    // row (1, 2, 3): mean 2, var 2/3
    double s = 1 / sqrt(2.0 / 3 + 1e-5);
    double want[] = {-s, 0, s};
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(at(y1, i), want[i], 1e-12);
    tg_tensor *y = tg_model_forward(m, x, false);
    double mean = 0, var = 0;
    for (int i = 0; i < 6; i++)
        mean += at(y1, i) / 6;
    for (int i = 0; i < 6; i++)
        var += (at(y1, i) - mean) * (at(y1, i) - mean) / 6;
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq_tol(at(y, i), (at(y1, i) - mean) / sqrt(var + 0.5), 1e-12);
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_layernorm_gradcheck)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(3, 4), TG_SCHEME_KERAS, 2);
    ASSERT_OK(tg_model_add(m, tg_layer_layernorm(1, 0, true)));
    ASSERT_OK(tg_model_add(m, tg_layer_layernorm(2, 1e-3, true)));
    int np;
    tg_tensor *const *ps = tg_model_params(m, &np);
    for (int k = 0; k < np; k++)
        for (int64_t i = 0; i < tg_tensor_numel(ps[k]); i++)
            tg_tensor_set_flat(ps[k], i, 0.3 + 0.2 * (double)(k * 3 + i % 5));
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3, 4), 0, 1, &rng);
    check_grads(m, seq_fwd, x);
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

/* ---- Embedding ------------------------------------------------------------ */

START_TEST(test_embedding)
{
    tg_model *m = tg_model_new_functional(TG_F64, TG_SCHEME_KERAS, 3);
    tg_layer *emb = tg_model_register(m, "tok", tg_layer_embedding(5, 3));
    ck_assert_ptr_nonnull(emb);
    tg_tape *tape = tg_tape_new();
    int64_t ids[] = {4, 1, 4, 0, 4, 2};
    tg_tensor *y = tg_layer_call_ids(m, emb, 2, ARR(2, 3), ids);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_ndim(y), 3);
    ck_assert_int_eq(tg_tensor_dim(y, 2), 3);
    tg_tensor *w = tg_layer_params(emb, NULL)[0];
    for (int p = 0; p < 6; p++)
        for (int j = 0; j < 3; j++)
            ck_assert(at(y, p * 3 + j) == at(w, ids[p] * 3 + j));
    // Keras's uniform(-0.05, 0.05).
    for (int64_t i = 0; i < 15; i++)
        ck_assert(fabs(at(w, i)) <= 0.05);
    // Scatter-add: row 4 was picked three times.
    tg_tensor *loss = tg_sum(y, NULL, 0, false);
    ASSERT_OK(tg_backward(loss));
    tg_tensor *g = tg_tensor_grad(w);
    double want[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 3, 3, 3};
    assert_close(g, want, 15, 0);
    // The same ids as a tensor of whole numbers.
    tg_tensor *xid = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3), (double[]){4, 1, 4, 0, 4, 2});
    tg_tensor *y2 = tg_layer_call(m, emb, xid);
    for (int i = 0; i < 18; i++)
        ck_assert(at(y2, i) == at(y, i));
    // Errors.
    int64_t bad[] = {0, 5};
    ASSERT_FRESH_NULL_FAIL(tg_layer_call_ids(m, emb, 1, ARR(2), bad), TG_ERANGE,
                           "tg_layer_call_ids: layer 'tok' (Embedding): id 5 at position 1 is "
                           "outside [0, 5)");
    ASSERT_OK(tg_tensor_set_flat(xid, 2, 1.5));
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, emb, xid), TG_EINVAL,
                           "input 1.5 at position 2 is not a whole number");
    ASSERT_FRESH_NULL_FAIL(tg_layer_embedding(0, 3), TG_EINVAL, "tg_layer_embedding: vocab 0");
    tg_layer *fc = tg_model_register(m, NULL, tg_layer_dense(2, TG_ACT_NONE));
    ASSERT_FRESH_NULL_FAIL(tg_layer_call_ids(m, fc, 1, ARR(2), ids), TG_EINVAL,
                           "layer 'dense' (Dense) takes tensors, not ids");
    tg_tensor_free(xid);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

static tg_tensor *emb_fwd(tg_model *m, tg_tensor *x)
{
    static const int64_t ids[] = {2, 0, 2, 1, 3, 3};
    tg_layer *emb = tg_model_layer(m, 0), *fc = tg_model_layer(m, 1);
    return tg_tanh(tg_layer_call(m, fc, tg_layer_call_ids(m, emb, 2, ARR(3, 2), ids)));
}

START_TEST(test_embedding_gradcheck)
{
    tg_model *m = tg_model_new_functional(TG_F64, TG_SCHEME_PYTORCH, 3);
    ck_assert_ptr_nonnull(tg_model_register(m, "emb", tg_layer_embedding(4, 3)));
    ck_assert_ptr_nonnull(tg_model_register(m, "fc", tg_layer_dense(2, TG_ACT_NONE)));
    check_grads(m, emb_fwd, NULL);
    tg_model_free(m);
}
END_TEST

/* ---- Dense over sequences, Conv1D, GlobalAveragePooling2D ---------------- */

START_TEST(test_dense_sequence)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(4, 3), TG_SCHEME_KERAS, 5);
    ASSERT_OK(tg_model_add(m, tg_layer_dense(2, TG_ACT_SOFTMAX)));
    int nd;
    const int64_t *s = tg_model_output_shape(m, &nd);
    ck_assert_int_eq(nd, 2);
    ck_assert(s[0] == 4 && s[1] == 2);
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 4, 3), 0, 1, &rng);
    tg_tensor *y = tg_model_forward(m, x, false);
    // Each position on its own: the softmax is over the last (feature) axis.
    for (int p = 0; p < 8; p++)
        ck_assert_double_eq_tol(at(y, 2 * p) + at(y, 2 * p + 1), 1.0, 1e-14);
    tg_tensor *w = tg_model_params(m, NULL)[0];
    double z0 = 0, z1 = 0;
    for (int k = 0; k < 3; k++) {
        z0 += at(x, 3 + k) * at(w, 2 * k);
        z1 += at(x, 3 + k) * at(w, 2 * k + 1);
    }
    ck_assert_double_eq_tol(at(y, 2), exp(z0) / (exp(z0) + exp(z1)), 1e-14);
    tg_tape_free(tape);
    check_grads(m, seq_fwd, x);
    tg_tensor_free(x);
    tg_model_free(m);
    // 3-D samples stay refused unless asked for (the NCHW/NHWC trap).
    m = tg_model_new(TG_F64, TG_SHAPE(2, 3, 4), TG_SCHEME_KERAS, 5);
    ASSERT_FAIL(tg_model_add(m, tg_layer_dense(2, TG_ACT_NONE)), TG_ESHAPE,
                "Dense needs a 1-D input per sample, got (None, 2, 3, 4); add a Flatten");
    tg_dense_opts o = tg_dense_defaults();
    o.last_axis = true;
    ASSERT_OK(tg_model_add(m, tg_layer_dense_ex(5, TG_ACT_NONE, &o)));
    s = tg_model_output_shape(m, &nd);
    ck_assert(nd == 3 && s[2] == 5);
    tg_model_free(m);
}
END_TEST

START_TEST(test_conv1d)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2, 7), TG_SCHEME_PYTORCH, 6);
    tg_conv1d_opts o = tg_conv1d_defaults();
    o.padding = TG_PAD_SAME;
    o.stride = 2;
    ASSERT_OK(tg_model_add(m, tg_layer_conv1d_ex(3, 3, TG_ACT_TANH, &o)));
    ASSERT_OK(tg_model_add(m, tg_layer_conv1d(2, 2, TG_ACT_NONE)));
    int nd;
    const int64_t *s = tg_model_output_shape(m, &nd);
    ck_assert(nd == 2 && s[0] == 2 && s[1] == 3); // 7 -> 4 (same, stride 2) -> 3
    tg_tensor *w = tg_model_params(m, NULL)[2];
    ck_assert_int_eq(tg_tensor_ndim(w), 3);
    ck_assert(tg_tensor_dim(w, 0) == 2 && tg_tensor_dim(w, 1) == 3 && tg_tensor_dim(w, 2) == 2);
    // Against a direct sum for the second layer (valid, stride 1).
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 2, 7), 0, 1, &rng);
    tg_tensor *h = tg_layer_call(m, tg_model_layer(m, 0), x);
    tg_tensor *y = tg_layer_call(m, tg_model_layer(m, 1), h);
    tg_tensor *b = tg_model_params(m, NULL)[3];
    double want = at(b, 1);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 2; k++)
            want += at(w, (1 * 3 + c) * 2 + k) * at(h, (1 * 3 + c) * 4 + 1 + k);
    ck_assert_double_eq_tol(at(y, (1 * 2 + 1) * 3 + 1), want, 1e-13);
    tg_tape_free(tape);
    check_grads(m, seq_fwd, x);
    ASSERT_FRESH_NULL_FAIL(tg_layer_conv1d(0, 3, TG_ACT_NONE), TG_EINVAL,
                           "tg_layer_conv1d: filters must be in 1..2^30 (got 0)");
    ASSERT_FAIL(tg_model_add(m, tg_layer_conv1d(2, 4, TG_ACT_NONE)), TG_ESHAPE,
                "tg_model_add: layer 2 (conv1d_2, Conv1D): kernel 4 (dilation 1, padding 0) "
                "is larger than the input (None, 2, 3)");
    tg_tensor_free(x);
    tg_model_free(m);
    m = tg_model_new(TG_F64, TG_SHAPE(7), TG_SCHEME_PYTORCH, 6);
    ASSERT_FAIL(tg_model_add(m, tg_layer_conv1d(2, 4, TG_ACT_NONE)), TG_ESHAPE,
                "Conv1D needs a 2-D (C, L) input per sample, got (None, 7)");
    tg_model_free(m);
}
END_TEST

START_TEST(test_global_avgpool)
{
    tg_model *m = tg_model_new(TG_F64, TG_SHAPE(2, 3, 2), TG_SCHEME_KERAS, 6);
    ASSERT_OK(tg_model_add(m, tg_layer_conv2d(3, 2, 1, TG_ACT_TANH)));
    ASSERT_OK(tg_model_add(m, tg_layer_global_avgpool2d()));
    int nd;
    const int64_t *s = tg_model_output_shape(m, &nd);
    ck_assert(nd == 1 && s[0] == 3);
    tg_tape *tape = tg_tape_new();
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 2, 3, 2), 0, 1, &rng);
    tg_tensor *h = tg_layer_call(m, tg_model_layer(m, 0), x);
    tg_tensor *y = tg_layer_call(m, tg_model_layer(m, 1), h);
    double mean = 0;
    for (int i = 0; i < 4; i++)
        mean += at(h, (1 * 3 + 2) * 4 + i) / 4;
    ck_assert_double_eq_tol(at(y, 1 * 3 + 2), mean, 1e-15);
    tg_tape_free(tape);
    check_grads(m, seq_fwd, x);
    tg_tensor_free(x);
    ASSERT_FAIL(tg_model_add(m, tg_layer_global_avgpool2d()), TG_ESHAPE,
                "GlobalAveragePooling2D needs a 3-D (C, H, W) input per sample, got (None, 3)");
    tg_model_free(m);
}
END_TEST

/* ---- attention ------------------------------------------------------------ */

static tg_tensor *att_fwd(tg_model *m, tg_tensor *x)
{
    return tg_layer_call(m, tg_model_layer(m, 0), x);
}

/* The reference: per batch, head, the formula of nn.h written out in loops. */
static double att_ref(tg_tensor *const *p, const tg_tensor *x, int64_t b, int64_t i, int64_t o,
                      int64_t len, int64_t d, int heads, bool causal)
{
    int64_t dh = d / heads;
    double *q = calloc((size_t)(len * d), sizeof *q), *k = calloc((size_t)(len * d), sizeof *k),
           *v = calloc((size_t)(len * d), sizeof *v), *hcat = calloc((size_t)d, sizeof *hcat);
    for (int64_t t = 0; t < len; t++)
        for (int64_t c = 0; c < d; c++) {
            q[t * d + c] = at(p[1], c);
            k[t * d + c] = at(p[3], c);
            v[t * d + c] = at(p[5], c);
            for (int64_t e = 0; e < d; e++) {
                double xv = at(x, (b * len + t) * d + e);
                q[t * d + c] += xv * at(p[0], e * d + c);
                k[t * d + c] += xv * at(p[2], e * d + c);
                v[t * d + c] += xv * at(p[4], e * d + c);
            }
        }
    for (int h = 0; h < heads; h++) {
        double sc[16], mx = -INFINITY, z = 0;
        int64_t last = causal ? i : len - 1;
        for (int64_t j = 0; j <= last; j++) {
            sc[j] = 0;
            for (int64_t c = 0; c < dh; c++)
                sc[j] += q[i * d + h * dh + c] * k[j * d + h * dh + c];
            sc[j] /= sqrt((double)dh);
            mx = fmax(mx, sc[j]);
        }
        for (int64_t j = 0; j <= last; j++)
            z += (sc[j] = exp(sc[j] - mx));
        for (int64_t c = 0; c < dh; c++)
            for (int64_t j = 0; j <= last; j++)
                hcat[h * dh + c] += sc[j] / z * v[j * d + h * dh + c];
    }
    double y = at(p[7], o);
    for (int64_t c = 0; c < d; c++)
        y += hcat[c] * at(p[6], c * d + o);
    free(q);
    free(k);
    free(v);
    free(hcat);
    return y;
}

START_TEST(test_attention)
{
    for (int causal = 0; causal < 2; causal++) {
        tg_model *m = tg_model_new_functional(TG_F64, TG_SCHEME_KERAS, 7 + causal);
        tg_attention_opts o = tg_attention_defaults();
        o.causal = causal;
        o.bias_init = TG_INIT(HE_UNIFORM);
        tg_layer *att = tg_model_register(m, "attn", tg_layer_attention(2, &o));
        tg_tape *tape = tg_tape_new();
        tg_rng rng = tg_rng_seeded(1);
        tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 5, 4), 0, 1, &rng);
        tg_tensor *y = tg_layer_call(m, att, x);
        ck_assert_ptr_nonnull(y);
        int np;
        tg_tensor *const *p = tg_layer_params(att, &np);
        ck_assert_int_eq(np, 8);
        ck_assert_str_eq(tg_layer_param_name(att, 6), "out_weight");
        for (int64_t b = 0; b < 2; b++)
            for (int64_t i = 0; i < 5; i++)
                for (int64_t c = 0; c < 4; c++)
                    ck_assert_double_eq_tol(at(y, (b * 5 + i) * 4 + c),
                                            att_ref(p, x, b, i, c, 5, 4, 2, causal), 1e-12);
        // Another length works (a shorter prompt).
        tg_tensor *x3 = tg_tensor_normal(TG_F64, TG_SHAPE(1, 3, 4), 0, 1, &rng);
        tg_tensor *y3 = tg_layer_call(m, att, x3);
        ck_assert_int_eq(tg_tensor_dim(y3, 1), 3);
        ck_assert_double_eq_tol(at(y3, 5), att_ref(p, x3, 0, 1, 1, 3, 4, 2, causal), 1e-12);
        tg_tape_free(tape);
        check_grads(m, att_fwd, x);
        tg_tensor *x5 = tg_tensor_normal(TG_F64, TG_SHAPE(1, 3, 5), 0, 1, &rng);
        tape = tg_tape_new();
        ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, att, x5), TG_ESHAPE,
                               "tg_layer_call: layer 'attn' (MultiHeadAttention): the model dim "
                               "D = 5 of (None, 3, 5) is not a multiple of num_heads 2");
        tg_tape_free(tape);
        tg_tensor_free(x);
        tg_tensor_free(x3);
        tg_tensor_free(x5);
        tg_model_free(m);
    }
    ASSERT_FRESH_NULL_FAIL(tg_layer_attention(0, NULL), TG_EINVAL,
                           "tg_layer_attention: num_heads must be >= 1 (got 0)");
}
END_TEST

/* Against torch.nn.MultiheadAttention (PyTorch 1.13, float64, batch_first)
 * with in_proj_weight = cat(Wq^T, Wk^T, Wv^T), out_proj.weight = Wo^T and the
 * biases, weights val(k, i) = 0.6 sin(0.5 i + 0.9 k) (W k = 0..3 for q, k, v,
 * out; b k + 10), x[i] = cos(0.3 i) of shape (2, 3, 4), 2 heads; causal
 * through attn_mask = triu(ones(3, 3), 1). */
START_TEST(test_attention_vs_pytorch)
{
    static const double want[2][24] = {
        {-0.4718346462500016, -0.15257464973755178, 0.20404094225758757, 0.51070019541143041,
         -0.47701491362762782, -0.16381984802362262, 0.18948402979350326, 0.49639560863061116,
         -0.47485622579771219, -0.16115848366487012, 0.19199647586774304, 0.49814400199674425,
         -0.40914224578042396, -0.11615069942930331, 0.20527858903937063, 0.47644851957012702,
         -0.41058348005902318, -0.11395149668233782, 0.21057978727956644, 0.48355379508860108,
         -0.41539460234774706, -0.12190486653547143, 0.20143143218554099, 0.47545029114073933},
        {-0.51131103096059671, -0.23464223732422337, 0.099475159443235123, 0.40923756786151855,
         -0.51159537840003388, -0.21169841408963644, 0.14002970523020963, 0.45747366900299852,
         -0.47485622579771219, -0.16115848366487012, 0.19199647586774304, 0.49814400199674425,
         -0.3387023379147685, 0.0033523523042266745, 0.34458626976177315, 0.60145345051534105,
         -0.37121132351654029, -0.059731118308863684, 0.2663733478564011, 0.52726032837113557,
         -0.41539460234774706, -0.12190486653547143, 0.20143143218554099, 0.47545029114073933}};
    for (int causal = 0; causal < 2; causal++) {
        tg_model *m = tg_model_new_functional(TG_F64, TG_SCHEME_PYTORCH, 1);
        tg_attention_opts o = tg_attention_defaults();
        o.causal = causal;
        tg_layer *att = tg_model_register(m, "attn", tg_layer_attention(2, &o));
        double xv[24];
        for (int i = 0; i < 24; i++)
            xv[i] = cos(0.3 * i);
        tg_tensor *x = tg_tensor_from_doubles(TG_F64, TG_SHAPE(2, 3, 4), xv);
        tg_tape *tape = tg_tape_new();
        ck_assert_ptr_nonnull(tg_layer_call(m, att, x)); // builds
        tg_tensor *const *p = tg_layer_params(att, NULL);
        for (int k = 0; k < 4; k++) {
            for (int i = 0; i < 16; i++)
                ASSERT_OK(tg_tensor_set_flat(p[2 * k], i, 0.6 * sin(0.5 * i + 0.9 * k)));
            for (int i = 0; i < 4; i++)
                ASSERT_OK(tg_tensor_set_flat(p[2 * k + 1], i, 0.6 * sin(0.5 * i + 0.9 * (k + 10))));
        }
        assert_close(tg_layer_call(m, att, x), want[causal], 24, 1e-13);
        tg_tensor_free(x);
        tg_tape_free(tape);
        tg_model_free(m);
    }
}
END_TEST

/* ---- the functional model -------------------------------------------------- */

/* x + Dense(relu(Dense(x))): a residual block. */
static tg_tensor *residual(tg_model *m, tg_tensor *x)
{
    tg_layer *fc1 = tg_model_layer(m, 0), *fc2 = tg_model_layer(m, 1);
    return tg_add(x, tg_layer_call(m, fc2, tg_layer_call(m, fc1, x)));
}

START_TEST(test_functional_residual)
{
    tg_model *m = tg_model_new_functional(TG_F64, TG_SCHEME_KERAS, 11);
    ck_assert(tg_model_functional(m));
    ck_assert_ptr_nonnull(tg_model_register(m, "block.fc1", tg_layer_dense(8, TG_ACT_RELU)));
    ck_assert_ptr_nonnull(tg_model_register(m, "block.fc2", tg_layer_dense(4, TG_ACT_NONE)));
    char *s = summary_text(m);
    ck_assert_msg(strstr(s, "block.fc1 (Dense)            (unbuilt)                 0\n"), "%s",
                  s);
    free(s);
    ck_assert_int_eq(tg_model_param_count(m), 0);
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(3, 4), 0, 1, &rng);
    check_grads(m, residual, x);
    ck_assert_int_eq(tg_model_param_count(m), 4 * 8 + 8 + 8 * 4 + 4);
    s = summary_text(m);
    const char *want = "Model: \"model\"\n"
                       "_________________________________________________________________\n"
                       "Layer (type)                 Output Shape              Param #\n"
                       "=================================================================\n"
                       "block.fc1 (Dense)            (None, 8)                 40\n"
                       "_________________________________________________________________\n"
                       "block.fc2 (Dense)            (None, 4)                 36\n"
                       "=================================================================\n"
                       "Total params: 76\n"
                       "Trainable params: 76\n"
                       "Non-trainable params: 0\n"
                       "_________________________________________________________________\n";
    ck_assert_str_eq(s, want);
    free(s);
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

/* A pre-LN transformer block on (N, L, D): x + attn(LN(x)), then
 * h + fc2(gelu(fc1(LN(h)))). */
static tg_tensor *transformer(tg_model *m, tg_tensor *x)
{
    tg_layer *ln1 = tg_model_layer(m, 0), *att = tg_model_layer(m, 1),
             *ln2 = tg_model_layer(m, 2), *fc1 = tg_model_layer(m, 3),
             *fc2 = tg_model_layer(m, 4);
    tg_tensor *h = tg_add(x, tg_layer_call(m, att, tg_layer_call(m, ln1, x)));
    tg_tensor *f = tg_layer_call(m, fc2, tg_layer_call(m, fc1, tg_layer_call(m, ln2, h)));
    return tg_add(h, f);
}

static tg_model *transformer_model(tg_dtype dt)
{
    tg_model *m = tg_model_new_functional(dt, TG_SCHEME_PYTORCH, 12);
    tg_attention_opts ao = tg_attention_defaults();
    ao.causal = true;
    ck_assert_ptr_nonnull(tg_model_register(m, "h0.ln1", tg_layer_layernorm(1, 0, true)));
    ck_assert_ptr_nonnull(tg_model_register(m, "h0.attn", tg_layer_attention(2, &ao)));
    ck_assert_ptr_nonnull(tg_model_register(m, "h0.ln2", tg_layer_layernorm(1, 0, true)));
    ck_assert_ptr_nonnull(tg_model_register(m, "h0.fc1", tg_layer_dense(8, TG_ACT_GELU)));
    ck_assert_ptr_nonnull(tg_model_register(m, "h0.fc2", tg_layer_dense(4, TG_ACT_NONE)));
    return m;
}

START_TEST(test_functional_transformer)
{
    tg_model *m = transformer_model(TG_F64);
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3, 4), 0, 1, &rng);
    check_grads(m, transformer, x);
    // ln 8 + attn 4*(16+4) + ln 8 + fc1 40 + fc2 36
    ck_assert_int_eq(tg_model_param_count(m), 8 + 80 + 8 + 40 + 36);
    // Causal: changing the last position leaves the earlier outputs alone.
    tg_tape *tape = tg_tape_new();
    tg_tensor *y = tg_tensor_clone(transformer(m, x));
    ASSERT_OK(tg_tensor_set_flat(x, 2 * 4 + 1, 3.0));
    tg_tensor *y2 = transformer(m, x);
    for (int i = 0; i < 24; i++)
        if (i % 12 < 8)
            ck_assert_double_eq_tol(at(y2, i), at(y, i), 1e-15);
    ck_assert(fabs(at(y2, 9) - at(y, 9)) > 1e-6);
    tg_tensor_free(y);
    tg_tape_free(tape);
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

/* float32 through every new layer, and no allocation in a training step after
 * the first (the buffers are updated in place). */
START_TEST(test_float32_step_allocs)
{
    tg_model *m = transformer_model(TG_F32);
    tg_layer *emb = tg_model_register(m, "tok", tg_layer_embedding(7, 4));
    tg_layer *bn = tg_model_register(m, "bn", tg_layer_batchnorm1d(NULL));
    tg_layer *conv = tg_model_register(m, "conv", tg_layer_conv1d(4, 2, TG_ACT_RELU));
    tg_layer *head = tg_model_register(m, "head", tg_layer_dense(7, TG_ACT_NONE));
    int64_t ids[] = {1, 2, 3, 4, 5, 6, 0, 1};
    int64_t labels[] = {2, 3, 4, 5, 6, 0, 1, 2};
    tg_tape *tape = tg_tape_new();
    tg_optim *opt = NULL;
    double first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        tg_tensor *h = tg_layer_call_ids(m, emb, 2, ARR(2, 4), ids); // (2, 4, 4)
        h = transformer(m, h);
        h = tg_layer_call(m, bn, tg_transpose(h, 1, 2));          // (2, 4 ch, 4 len)
        h = tg_layer_call(m, conv, h);                             // (2, 4, 3)
        h = tg_layer_call(m, head, tg_transpose(h, 1, 2));        // (2, 3, 7)
        tg_tensor *logits = tg_reshape(h, 2, ARR(6, 7));
        tg_tensor *loss = tg_cross_entropy(logits, labels, TG_REDUCE_MEAN);
        ck_assert_msg(loss != NULL, "%s", tg_last_error());
        if (!opt) {
            int np;
            tg_tensor *const *ps = tg_model_params(m, &np);
            tg_adam_opts ao = tg_adam_defaults();
            ao.lr = 0.01;
            opt = tg_optim_adam(ps, np, &ao);
            ck_assert_ptr_nonnull(opt);
            first = tg_tensor_item(loss);
        }
        long before = tg__alloc_count();
        ASSERT_OK(tg_backward(loss));
        ASSERT_OK(tg_optim_step(opt));
        tg_optim_zero_grad(opt);
        last = tg_tensor_item(loss);
        tg_tape_reset(tape);
        if (step >= 2)
            ck_assert_int_eq(tg__alloc_count() - before, 0);
    }
    ck_assert_msg(last < first * 0.5, "loss %g -> %g", first, last);
    tg_optim_free(opt);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

START_TEST(test_functional_errors)
{
    tg_model *seq = tg_model_new(TG_F32, TG_SHAPE(3), TG_SCHEME_KERAS, 1);
    tg_model *m = tg_model_new_functional(TG_F32, TG_SCHEME_KERAS, 1);
    ASSERT_FRESH_NULL_FAIL(tg_model_new_functional((tg_dtype)7, TG_SCHEME_KERAS, 1), TG_EINVAL,
                           "tg_model_new_functional: invalid dtype 7");
    ASSERT_FRESH_NULL_FAIL(tg_model_register(seq, "a", tg_layer_flatten()), TG_ESTATE,
                           "tg_model_register: the model is Sequential");
    ASSERT_FAIL(tg_model_add(m, tg_layer_flatten()), TG_ESTATE,
                "tg_model_add: the model is functional");
    tg_layer *a = tg_model_register(m, "a", tg_layer_dense(2, TG_ACT_NONE));
    ck_assert_ptr_nonnull(a);
    ASSERT_FRESH_NULL_FAIL(tg_model_register(m, "a", tg_layer_flatten()), TG_EINVAL,
                           "the model already has a layer named \"a\"");
    ASSERT_FRESH_NULL_FAIL(tg_model_register(m, "a b", tg_layer_flatten()), TG_EINVAL,
                           "tg_model_register: layer name \"a b\" must be 1..63 characters");
    ASSERT_FRESH_NULL_FAIL(tg_model_register(m, "", tg_layer_flatten()), TG_EINVAL,
                           "layer name \"\" must be");
    ASSERT_FRESH_NULL_FAIL(tg_model_register(m, "a", NULL), TG_EINVAL,
                           "tg_model_register: layer 1 is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_model_register(m, NULL, a), TG_ESTATE, "already belongs");
    ASSERT_FRESH_NULL_FAIL(tg_model_register(NULL, NULL, tg_layer_flatten()), TG_EINVAL,
                           "model is NULL");
    // Automatic names skip the taken ones.
    tg_model_register(m, "dense", tg_layer_flatten());
    tg_layer *d2 = tg_model_register(m, NULL, tg_layer_dense(2, TG_ACT_NONE));
    ck_assert_str_eq(tg_layer_name(d2), "dense_1");
    tg_tensor *x = tg_tensor_ones(TG_F32, TG_SHAPE(2, 3));
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, a, x), TG_ESTATE, "no current tape");
    tg_tape *tape = tg_tape_new();
    ASSERT_FRESH_NULL_FAIL(tg_model_forward(m, x, false), TG_ESTATE,
                           "tg_model_forward: the model is functional");
    ck_assert_ptr_nonnull(tg_layer_call(m, a, x));
    tg_tensor *x4 = tg_tensor_ones(TG_F32, TG_SHAPE(2, 4));
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, a, x4), TG_ESHAPE,
                           "tg_layer_call: layer 'a' (Dense): input (None, 4), but the layer "
                           "was built for 3 features on the last axis");
    tg_layer *other = tg_layer_dense(2, TG_ACT_NONE);
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, other, x), TG_ESTATE,
                           "layer 'dense' (Dense) does not belong to this model");
    tg_layer_free(other);
    ASSERT_OK(tg_model_add(seq, tg_layer_dense(2, TG_ACT_NONE)));
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, tg_model_layer(seq, 0), x), TG_ESTATE,
                           "does not belong to this model");
    // A Sequential model's layer through tg_layer_call.
    ck_assert_ptr_nonnull(tg_layer_call(seq, tg_model_layer(seq, 0), x));
    tg_tensor *x64 = tg_tensor_ones(TG_F64, TG_SHAPE(2, 3));
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, a, x64), TG_EDTYPE, "input is float64");
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, NULL, x), TG_EINVAL, "tg_layer_call: layer is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(NULL, a, x), TG_EINVAL, "tg_layer_call: model is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, a, NULL), TG_EINVAL, "tg_layer_call");
    ASSERT_FRESH_NULL_FAIL(tg_layer_call_ids(m, a, 0, NULL, NULL), TG_EINVAL,
                           "tg_layer_call_ids: ndim 0");
    // A failed first call leaves the layer unbuilt, and a later one builds it.
    tg_layer *bn = tg_model_register(m, "bn", tg_layer_batchnorm2d(NULL));
    ASSERT_FRESH_NULL_FAIL(tg_layer_call(m, bn, x), TG_ESHAPE,
                           "tg_layer_call: layer 'bn' (BatchNorm2D): BatchNorm2D needs a 3-D");
    ck_assert_ptr_null(tg_layer_output_shape(bn, NULL));
    tg_tensor *img = tg_tensor_ones(TG_F32, TG_SHAPE(2, 3, 2, 2));
    ck_assert_ptr_nonnull(tg_layer_call(m, bn, img));
    ck_assert_int_eq(tg_model_buffer_count(m), 6);
    ck_assert_ptr_null(tg_model_input_shape(m, NULL));
    tg_tensor_free(img);
    tg_tensor_free(x);
    tg_tensor_free(x4);
    tg_tensor_free(x64);
    tg_tape_free(tape);
    tg_model_free(m);
    tg_model_free(seq);
}
END_TEST

/* Second derivatives through the layers (their backward is made of ops). */
static tg_tensor *bn_ln_att(tg_model *m, tg_tensor *x)
{
    tg_tensor *h = tg_layer_call(m, tg_model_layer(m, 0), x);                 // LN
    h = tg_layer_call(m, tg_model_layer(m, 1), h);                           // attention
    h = tg_layer_call(m, tg_model_layer(m, 2), tg_transpose(h, 1, 2));       // BN1D (N, D, L)
    return tg_layer_call(m, tg_model_layer(m, 3), h);                        // Conv1D
}

START_TEST(test_gradgradcheck_layers)
{
    for (int training = 0; training < 2; training++) {
        tg_model *m = tg_model_new_functional(TG_F64, TG_SCHEME_PYTORCH, 13);
        tg_attention_opts ao = tg_attention_defaults();
        ao.causal = true;
        tg_model_register(m, "ln", tg_layer_layernorm(1, 0, true));
        tg_model_register(m, "attn", tg_layer_attention(2, &ao));
        tg_model_register(m, "bn", tg_layer_batchnorm1d(NULL));
        tg_model_register(m, "conv", tg_layer_conv1d(2, 2, TG_ACT_TANH));
        tg_rng rng = tg_rng_seeded(4);
        tg_tensor *x = tg_tensor_normal(TG_F64, TG_SHAPE(2, 3, 4), 0, 1, &rng);
        tg_tape *tape = tg_tape_new();
        ck_assert_ptr_nonnull(bn_ln_att(m, x)); // build, move the running statistics
        tg_tape_free(tape);
        tg_model_set_training(m, training);
        fwd_ctx c = {m, bn_ln_att};
        tg_gradcheck_report rep = {0};
        tg_status st = tg_gradgradcheck(fwd_tramp, &c, 1, &x, NULL, &rep);
        ck_assert_msg(st == TG_OK, "%s / %s", rep.message, tg_last_error());
        if (training)
            check_grads(m, bn_ln_att, x);
        tg_tensor_free(x);
        tg_model_free(m);
    }
}
END_TEST

/* Embedding as the first layer of a Sequential model: ids as whole numbers. */
START_TEST(test_embedding_sequential)
{
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(3), TG_SCHEME_PYTORCH, 2);
    ASSERT_OK(tg_model_add(m, tg_layer_embedding(10, 4)));
    ASSERT_OK(tg_model_add(m, tg_layer_flatten()));
    ASSERT_OK(tg_model_add(m, tg_layer_dense(2, TG_ACT_SOFTMAX)));
    int nd;
    const int64_t *s = tg_layer_output_shape(tg_model_layer(m, 0), &nd);
    ck_assert(nd == 2 && s[0] == 3 && s[1] == 4);
    ck_assert_int_eq(tg_model_param_count(m), 40 + 12 * 2 + 2);
    // torch.nn.Embedding's N(0, 1) in the PyTorch scheme: not all small.
    tg_tensor *w = tg_model_params(m, NULL)[0];
    double big = 0;
    for (int i = 0; i < 40; i++)
        big = fmax(big, fabs(at(w, i)));
    ck_assert(big > 0.5);
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_tensor_from_doubles(TG_F32, TG_SHAPE(2, 3), (double[]){9, 0, 3, 3, 3, 1});
    tg_tensor *y = tg_model_forward(m, x, true);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_dim(y, 1), 2);
    ASSERT_OK(tg_tensor_set_flat(x, 0, 10));
    ASSERT_FRESH_NULL_FAIL(tg_model_forward(m, x, true), TG_ERANGE,
                           "tg_model_forward: layer 'embedding' (Embedding): id 10 at position "
                           "0 is outside [0, 10)");
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

/* Constructors' argument checks and the getters given NULL. */
START_TEST(test_layer_arg_errors)
{
    ASSERT_FRESH_NULL_FAIL(tg_layer_layernorm(0, 0, true), TG_EINVAL,
                           "tg_layer_layernorm: n_dims 0 outside 1..");
    ASSERT_FRESH_NULL_FAIL(tg_layer_layernorm(1, NAN, true), TG_EINVAL, "eps nan is not finite");
    tg_conv1d_opts o = tg_conv1d_defaults();
    o.stride = 0;
    ASSERT_FRESH_NULL_FAIL(tg_layer_conv1d_ex(2, 3, TG_ACT_NONE, &o), TG_EINVAL,
                           "tg_layer_conv1d: stride 0");
    o = tg_conv1d_defaults();
    o.padding = TG_PAD_EXPLICIT;
    o.pad = -1;
    ASSERT_FRESH_NULL_FAIL(tg_layer_conv1d_ex(2, 3, TG_ACT_NONE, &o), TG_EINVAL,
                           "tg_layer_conv1d: padding -1");
    ASSERT_FRESH_NULL_FAIL(tg_layer_conv1d(2, 3, (tg_activation)99), TG_EINVAL,
                           "unknown activation 99");
    tg_attention_opts ao = tg_attention_defaults();
    ao.kernel_init = TG_INIT_CONST(INFINITY);
    ASSERT_FRESH_NULL_FAIL(tg_layer_attention(2, &ao), TG_EINVAL, "invalid kernel initialiser");
    ck_assert_str_eq(tg_activation_name(TG_ACT_GELU), "gelu");
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(4), TG_SCHEME_KERAS, 1);
    ASSERT_FAIL(tg_model_add(m, tg_layer_layernorm(2, 0, true)), TG_ESHAPE,
                "LayerNormalization needs at least 2 dims (n_dims) of input per sample, got "
                "(None, 4)");
    ASSERT_FAIL(tg_model_add(m, tg_layer_attention(2, NULL)), TG_ESHAPE,
                "MultiHeadAttention needs a 2-D (L, D) sequence per sample, got (None, 4)");
    tg_model_free(m);
    int n = 3;
    tg_clear_error();
    ck_assert_ptr_null(tg_layer_buffers(NULL, &n));
    ck_assert_int_eq(n, 0);
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_layer_buffers: layer is NULL");
    tg_clear_error();
    ck_assert_ptr_null(tg_model_buffers(NULL, &n));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_model_buffers: model is NULL");
    ASSERT_FRESH_NULL_FAIL(tg_layer_param_name(NULL, 0), TG_EINVAL, "tg_layer_param_name");
    ASSERT_FRESH_NULL_FAIL(tg_layer_buffer_name(NULL, 0), TG_EINVAL, "tg_layer_buffer_name");
    tg_clear_error();
    ck_assert_int_eq(tg_layer_buffer_count(NULL), 0);
    ck_assert_int_eq(tg_model_buffer_count(NULL), 0);
    tg_clear_error();
    ck_assert(!tg_model_functional(NULL));
    ASSERT_FAIL(tg_last_status(), TG_EINVAL, "tg_model_functional: model is NULL");
}
END_TEST

/* docs/layers.md's residual block: the summary pasted there is this one. */
START_TEST(test_docs_residual_summary)
{
    tg_model *m = tg_model_new_functional(TG_F32, TG_SCHEME_KERAS, 42);
    tg_layer *l[4] = {
        tg_model_register(m, "res.fc1", tg_layer_dense(32, TG_ACT_RELU)),
        tg_model_register(m, "res.bn", tg_layer_batchnorm1d(NULL)),
        tg_model_register(m, "res.fc2", tg_layer_dense(16, TG_ACT_NONE)),
        tg_model_register(m, "head", tg_layer_dense(3, TG_ACT_NONE)),
    };
    tg_rng rng = tg_rng_seeded(1);
    tg_tensor *x = tg_tensor_normal(TG_F32, TG_SHAPE(64, 16), 0, 1, &rng);
    tg_tape *tape = tg_tape_new();
    tg_tensor *h = tg_layer_call(m, l[2], tg_layer_call(m, l[1], tg_layer_call(m, l[0], x)));
    ck_assert_ptr_nonnull(tg_layer_call(m, l[3], tg_relu(tg_add(x, h))));
    char *s = summary_text(m);
    FILE *f = fopen(TG_TEST_SOURCE_DIR "/docs/layers.md", "rb");
    ck_assert_ptr_nonnull(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    ck_assert_msg(strstr(doc, s) != NULL, "docs/layers.md lacks this summary:\n%s", s);
    free(s);
    tg_tensor_free(x);
    tg_tape_free(tape);
    tg_model_free(m);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("batchnorm");
    tcase_add_loop_test(tc, test_batchnorm_vs_pytorch, 0, 6);
    tcase_add_test(tc, test_batchnorm_keras_defaults);
    tcase_add_test(tc, test_batchnorm_gradcheck);
    tcase_add_test(tc, test_batchnorm_errors);
    tcase_add_test(tc, test_batchnorm_summary_and_buffers);
    suite_add_tcase(s, tc);
    tc = tcase_create("layernorm");
    tcase_add_test(tc, test_layernorm_values);
    tcase_add_test(tc, test_layernorm_gradcheck);
    suite_add_tcase(s, tc);
    tc = tcase_create("embedding");
    tcase_add_test(tc, test_embedding);
    tcase_add_test(tc, test_embedding_gradcheck);
    suite_add_tcase(s, tc);
    tc = tcase_create("dense_conv1d_gap");
    tcase_add_test(tc, test_dense_sequence);
    tcase_add_test(tc, test_conv1d);
    tcase_add_test(tc, test_global_avgpool);
    suite_add_tcase(s, tc);
    tc = tcase_create("attention");
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_attention_vs_pytorch);
    suite_add_tcase(s, tc);
    tc = tcase_create("functional");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_functional_residual);
    tcase_add_test(tc, test_functional_transformer);
    tcase_add_test(tc, test_float32_step_allocs);
    tcase_add_test(tc, test_functional_errors);
    tcase_add_test(tc, test_gradgradcheck_layers);
    tcase_add_test(tc, test_embedding_sequential);
    tcase_add_test(tc, test_layer_arg_errors);
    tcase_add_test(tc, test_docs_residual_summary);
    suite_add_tcase(s, tc);
    return s;
}

TG_CHECK_MAIN(layers_suite)
