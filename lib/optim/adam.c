/* adam.c - Adam and AdamW in two forms: PyTorch's (bias-corrected moments,
 * eps added to sqrt(v_hat)) and Keras's (bias correction folded into the
 * step size, eps added to sqrt(v)). optim.h has the formulas and why they
 * differ. The handle and its state come from optim.c. */
#include "kernels/kernels.h"
#include "optim/adam_internal.h"
#include "optim_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ADAM_X86 1
#include <immintrin.h>
#endif


/* Adam's own part of the handle (opt->impl). The cache holds beta1^t,
 * beta2^t and the bias corrections 1 - beta1^t and sqrt(1 - beta2^t) for the
 * per-parameter step count t = bc_t, reused by every parameter at that count
 * (see advance_powers); bc_t -1: nothing cached yet. */
typedef struct adam_impl {
    tg_adam_opts o;
    bool adamw;
    double bc_t, pow1, pow2, bc1, bc2_sqrt;
} adam_impl;

/* p, g, m, v (n). The PyTorch form mirrors torch's operation order (v/bc2
 * before adding eps, step_size applied to m/denom) so that float64 results
 * agree to the last few bits; the Keras form mirrors keras.optimizers.Adam
 * (m += (g - m) * (1 - beta1), p -= m * alpha / (sqrt(v) + eps)). One loop per
 * form with no branch inside, so that both vectorise: gcc does not unswitch a
 * loop this long. The weight decays are selects (L2) and a product by 1
 * (decoupled), both exact when unused. */
#define ADAM_KERNEL(NAME, T, SQRT)                                                           \
    static void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,      \
                     int64_t n, const tg__adam_coef *c)                                     \
    {                                                                                        \
        const T b1 = (T)c->beta1, b2 = (T)c->beta2, eps = (T)c->eps, l2 = (T)c->l2;          \
        const T one_b1 = (T)(1 - c->beta1), one_b2 = (T)(1 - c->beta2);                      \
        const T shrink = (T)c->shrink, step_size = (T)c->step_size;                          \
        const T bc2_sqrt = (T)c->bc2_sqrt, alpha = (T)c->alpha;                              \
        const bool decay_l2 = c->l2 != 0;                                                    \
        if (c->keras) {                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                \
                T gi = decay_l2 ? g[i] + l2 * p[i] : g[i];                                   \
                T mi = m[i] + (gi - m[i]) * one_b1;                                          \
                T vi = v[i] + (gi * gi - v[i]) * one_b2;                                     \
                m[i] = mi;                                                                   \
                v[i] = vi;                                                                   \
                p[i] = p[i] * shrink - mi * alpha / (SQRT(vi) + eps);                        \
            }                                                                                \
        } else {                                                                             \
            for (int64_t i = 0; i < n; i++) {                                                \
                T gi = decay_l2 ? g[i] + l2 * p[i] : g[i];                                   \
                T mi = b1 * m[i] + one_b1 * gi;                                              \
                T vi = b2 * v[i] + one_b2 * gi * gi;                                         \
                m[i] = mi;                                                                   \
                v[i] = vi;                                                                   \
                p[i] = p[i] * shrink - step_size * (mi / (SQRT(vi) / bc2_sqrt + eps));       \
            }                                                                                \
        }                                                                                    \
    }

ADAM_KERNEL(adam_f32_scalar, float, sqrtf)
ADAM_KERNEL(adam_f64, double, sqrt)

#ifdef ADAM_X86
/* adam_f32_scalar's operations, one by one in its order (no fused
 * multiply-add: each product and sum rounds as there), on 16 lanes; the tail
 * through masks. sqrt and division are IEEE-exact in both, so every
 * element's bytes are the scalar loop's. */
__attribute__((target("avx512f"))) static void adam_f32_avx512(float *restrict p,
                                                               const float *restrict g,
                                                               float *restrict m,
                                                               float *restrict v, int64_t n,
                                                               const tg__adam_coef *c)
{
    const __m512 b1 = _mm512_set1_ps((float)c->beta1), b2 = _mm512_set1_ps((float)c->beta2);
    const __m512 eps = _mm512_set1_ps((float)c->eps), l2 = _mm512_set1_ps((float)c->l2);
    const __m512 one_b1 = _mm512_set1_ps((float)(1 - c->beta1));
    const __m512 one_b2 = _mm512_set1_ps((float)(1 - c->beta2));
    const __m512 shrink = _mm512_set1_ps((float)c->shrink);
    const __m512 step_size = _mm512_set1_ps((float)c->step_size);
    const __m512 bc2_sqrt = _mm512_set1_ps((float)c->bc2_sqrt);
    const __m512 alpha = _mm512_set1_ps((float)c->alpha);
    const bool decay_l2 = c->l2 != 0, keras = c->keras;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 pi = _mm512_maskz_loadu_ps(k, p + i), gi = _mm512_maskz_loadu_ps(k, g + i);
        __m512 mi = _mm512_maskz_loadu_ps(k, m + i), vi = _mm512_maskz_loadu_ps(k, v + i);
        if (decay_l2)
            gi = _mm512_add_ps(gi, _mm512_mul_ps(l2, pi));
        if (keras) {
            mi = _mm512_add_ps(mi, _mm512_mul_ps(_mm512_sub_ps(gi, mi), one_b1));
            vi = _mm512_add_ps(vi, _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(gi, gi), vi), one_b2));
            __m512 den = _mm512_add_ps(_mm512_sqrt_ps(vi), eps);
            pi = _mm512_sub_ps(_mm512_mul_ps(pi, shrink),
                               _mm512_div_ps(_mm512_mul_ps(mi, alpha), den));
        } else {
            mi = _mm512_add_ps(_mm512_mul_ps(b1, mi), _mm512_mul_ps(one_b1, gi));
            vi = _mm512_add_ps(_mm512_mul_ps(b2, vi), _mm512_mul_ps(_mm512_mul_ps(one_b2, gi), gi));
            __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2_sqrt), eps);
            pi = _mm512_sub_ps(_mm512_mul_ps(pi, shrink),
                               _mm512_mul_ps(step_size, _mm512_div_ps(mi, den)));
        }
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(p + i, k, pi);
    }
}
#endif

int tg__adam_f32_variants(void) { return tg__cpu_avx512f() ? 2 : 1; }

void tg__adam_f32_variant(int variant, float *p, const float *g, float *m, float *v, int64_t n,
                          const tg__adam_coef *c)
{
#ifdef ADAM_X86
    if (variant != 0 && tg__cpu_avx512f()) {
        adam_f32_avx512(p, g, m, v, n, c);
        return;
    }
#endif
    (void)variant;
    adam_f32_scalar(p, g, m, v, n, c);
}

/* Two pow() calls cost more than a tiny network's whole update, so beta^t is
 * carried forward by one product per step. To keep it a pure function of t
 * (a run resumed from a checkpoint must reproduce the original bit for bit,
 * whatever step it was saved at), the products restart from pow() at
 * t = 1, 1 + SYNC, 1 + 2*SYNC, ...: beta^t = pow(beta, t0) * beta^(t - t0),
 * within SYNC/2 ulps or so of pow(beta, t), far below anything that moves a
 * result. Sets opt->bc_t = t and the powers and corrections for it. */
enum { SYNC = 64 };

static void advance_powers(adam_impl *opt, double beta1, double beta2, double t)
{
    // A step count restored from a checkpoint could be anything: only whole
    // positive counts take the fast path.
    if (t >= 1 && t < 1e15 && t == floor(t)) {
        int64_t ti = (int64_t)t;
        if (t == opt->bc_t + 1 && (ti - 1) % SYNC != 0) {
            opt->pow1 *= beta1;
            opt->pow2 *= beta2;
        } else {
            int64_t t0 = ti - (ti - 1) % SYNC;
            opt->pow1 = pow(beta1, (double)t0);
            opt->pow2 = pow(beta2, (double)t0);
            for (int64_t k = t0; k < ti; k++) {
                opt->pow1 *= beta1;
                opt->pow2 *= beta2;
            }
        }
    } else {
        opt->pow1 = pow(beta1, t);
        opt->pow2 = pow(beta2, t);
    }
    opt->bc_t = t;
    opt->bc1 = 1 - opt->pow1;
    opt->bc2_sqrt = sqrt(1 - opt->pow2);
}

static void adam_step(tg_optim *opt, double lr)
{
    adam_impl *a = opt->impl;
    const tg_adam_opts *o = &a->o;
    const bool adamw = a->adamw;
    tg__adam_coef c = {
        .beta1 = o->beta1,
        .beta2 = o->beta2,
        .eps = o->eps,
        .l2 = adamw ? 0 : o->weight_decay,
        .shrink = adamw ? 1 - lr * o->weight_decay : 1,
        .keras = o->form == TG_ADAM_KERAS,
    };
    for (int i = 0; i < opt->n_params; i++) {
        tg_tensor *p = opt->params[i];
        const tg_tensor *g = p->grad;
        if (!g)
            continue;
        double *step = tg__optim_buf(opt, i, 0);
        double t = *step + 1;
        if (t != a->bc_t)
            advance_powers(a, o->beta1, o->beta2, t);
        c.step_size = lr / a->bc1;
        c.bc2_sqrt = a->bc2_sqrt;
        c.alpha = lr * c.bc2_sqrt / a->bc1;
        if (p->dtype == TG_F32)
            tg__adam_f32_variant(-1, p->data, g->data, tg__optim_buf(opt, i, 1),
                                 tg__optim_buf(opt, i, 2), p->numel, &c);
        else
            adam_f64(p->data, g->data, tg__optim_buf(opt, i, 1), tg__optim_buf(opt, i, 2),
                     p->numel, &c);
        *step = t;
    }
}

tg_adam_opts tg_adam_defaults(void)
{
    return (tg_adam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                          .weight_decay = 0, .form = TG_ADAM_PYTORCH};
}

tg_adam_opts tg_adamw_defaults(void)
{
    tg_adam_opts o = tg_adam_defaults();
    o.weight_decay = 1e-2;
    return o;
}

tg_adam_opts tg_adam_keras_defaults(void)
{
    tg_adam_opts o = tg_adam_defaults();
    o.eps = 1e-7;
    o.form = TG_ADAM_KERAS;
    return o;
}

/* The constructor's checks, shared with tg_optim_set_hparam. */
static tg_status check_opts(const char *fn, const tg_adam_opts *o)
{
    if (!tg__nonneg_finite(o->lr))
        return tg__fail(TG_EINVAL, "%s: lr %g must be >= 0 and finite", fn, o->lr);
    // beta = 1 would make 1 - beta^t zero: the bias correction divides by it.
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return tg__fail(TG_EINVAL, "%s: beta1 %g outside [0, 1)", fn, o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return tg__fail(TG_EINVAL, "%s: beta2 %g outside [0, 1)", fn, o->beta2);
    if (!(o->eps > 0 && isfinite(o->eps)))
        return tg__fail(TG_EINVAL, "%s: eps %g must be > 0 and finite", fn, o->eps);
    if (!tg__nonneg_finite(o->weight_decay))
        return tg__fail(TG_EINVAL, "%s: weight_decay %g must be >= 0 and finite", fn,
                        o->weight_decay);
    if (o->form != TG_ADAM_PYTORCH && o->form != TG_ADAM_KERAS)
        return tg__fail(TG_EINVAL, "%s: unknown form %d (TG_ADAM_PYTORCH or TG_ADAM_KERAS)",
                        fn, (int)o->form);
    return TG_OK;
}

static const char *const hparams[] = {"beta1", "beta2", "eps", "weight_decay", "form", NULL};

static double adam_get(const tg_optim *opt, int k)
{
    const tg_adam_opts *o = &((const adam_impl *)opt->impl)->o;
    const double v[] = {o->beta1, o->beta2, o->eps, o->weight_decay, (double)o->form};
    return v[k];
}

static tg_status adam_set(tg_optim *opt, int k, double value, const char *fn)
{
    adam_impl *a = opt->impl;
    tg_adam_opts n = a->o;
    if (k == 4 && value != TG_ADAM_PYTORCH && value != TG_ADAM_KERAS)
        return tg__fail(TG_EINVAL, "%s: form %g must be %d (TG_ADAM_PYTORCH) or %d "
                        "(TG_ADAM_KERAS)", fn, value, TG_ADAM_PYTORCH, TG_ADAM_KERAS);
    switch (k) {
    case 0: n.beta1 = value; break;
    case 1: n.beta2 = value; break;
    case 2: n.eps = value; break;
    case 3: n.weight_decay = value; break;
    default: n.form = value == TG_ADAM_KERAS ? TG_ADAM_KERAS : TG_ADAM_PYTORCH; break;
    }
    tg_status st = check_opts(fn, &n);
    if (st != TG_OK)
        return st;
    a->o = n;
    a->bc_t = -1; // the cached powers belong to the old betas
    return TG_OK;
}

static const tg__optim_vtable adam_vt = {
    .name = "adam",
    .step = adam_step,
    .hparams = hparams,
    .get_hparam = adam_get,
    .set_hparam = adam_set,
};

/* AdamW differs only in how adam_step applies weight_decay (impl.adamw). */
static const tg__optim_vtable adamw_vt = {
    .name = "adamw",
    .step = adam_step,
    .hparams = hparams,
    .get_hparam = adam_get,
    .set_hparam = adam_set,
};

static tg_optim *create(const char *fn, const tg__optim_vtable *vt, tg_tensor *const *params,
                        int n, const tg_adam_opts *o)
{
    if (tg__optim_check_params(fn, params, n) != TG_OK || check_opts(fn, o) != TG_OK)
        return NULL;
    static const char *const names[] = {"exp_avg", "exp_avg_sq"};
    adam_impl a = {.o = *o, .adamw = vt == &adamw_vt, .bc_t = -1};
    return tg__optim_create(fn, vt, &a, sizeof a, params, n, 2, names, o->lr);
}

tg_optim *tg_optim_adam(tg_tensor *const *params, int n, const tg_adam_opts *opts)
{
    tg_adam_opts o = opts ? *opts : tg_adam_defaults();
    return create("tg_optim_adam", &adam_vt, params, n, &o);
}

tg_optim *tg_optim_adamw(tg_tensor *const *params, int n, const tg_adam_opts *opts)
{
    tg_adam_opts o = opts ? *opts : tg_adamw_defaults();
    return create("tg_optim_adamw", &adamw_vt, params, n, &o);
}
