/* rmsprop.c - RMSprop with weight decay, momentum and the centered variant,
 * step for step as torch.optim.RMSprop (formula in optim.h). The handle and
 * its state come from optim.c. */
#include "optim_internal.h"

typedef struct rms_coef {
    double lr, alpha, eps, weight_decay, momentum;
} rms_coef;

/* p, g, sq, buf, ga (n). buf is NULL without momentum, ga NULL unless
 * centered; torch starts all three buffers at zero. RMSPROP_LOOP is one
 * branch-free loop for one (centered, momentum) case, so that each of the
 * four vectorises: gcc does not unswitch a loop this long by itself. */
#define RMSPROP_LOOP(T, SQRT, CENTERED, MOMENTUM)                                            \
    for (int64_t i = 0; i < n; i++) {                                                        \
        T gi = decay ? g[i] + wd * p[i] : g[i];                                              \
        T s = alpha * sq[i] + one_alpha * gi * gi;                                           \
        sq[i] = s;                                                                           \
        T avg;                                                                               \
        if (CENTERED) {                                                                      \
            T a = alpha * ga[i] + one_alpha * gi;                                            \
            ga[i] = a;                                                                       \
            avg = SQRT(s - a * a) + eps;                                                     \
        } else {                                                                             \
            avg = SQRT(s) + eps;                                                             \
        }                                                                                    \
        if (MOMENTUM) {                                                                      \
            T b = mom * buf[i] + gi / avg;                                                   \
            buf[i] = b;                                                                      \
            p[i] -= lr * b;                                                                  \
        } else {                                                                             \
            p[i] -= lr * (gi / avg);                                                         \
        }                                                                                    \
    }

#define RMSPROP_KERNEL(NAME, T, SQRT)                                                        \
    static void NAME(T *restrict p, const T *restrict g, T *restrict sq, T *restrict buf,   \
                     T *restrict ga, int64_t n, const rms_coef *c)                           \
    {                                                                                        \
        const T lr = (T)c->lr, alpha = (T)c->alpha, one_alpha = (T)(1 - c->alpha);           \
        const T eps = (T)c->eps, wd = (T)c->weight_decay, mom = (T)c->momentum;              \
        const bool decay = c->weight_decay != 0;                                             \
        if (ga && buf)                                                                       \
            RMSPROP_LOOP(T, SQRT, 1, 1)                                                      \
        else if (ga)                                                                         \
            RMSPROP_LOOP(T, SQRT, 1, 0)                                                      \
        else if (buf)                                                                        \
            RMSPROP_LOOP(T, SQRT, 0, 1)                                                      \
        else                                                                                 \
            RMSPROP_LOOP(T, SQRT, 0, 0)                                                      \
    }

RMSPROP_KERNEL(rmsprop_f32, float, sqrtf)
RMSPROP_KERNEL(rmsprop_f64, double, sqrt)

static void rmsprop_step(tg_optim *opt, double lr)
{
    const tg_rmsprop_opts *o = opt->impl;
    const rms_coef c = {lr, o->alpha, o->eps, o->weight_decay, o->momentum};
    // Slots after "step" and "square_avg" are created in this order (see below).
    const int k_buf = o->momentum > 0 ? 2 : 0;
    const int k_ga = o->centered ? (o->momentum > 0 ? 3 : 2) : 0;
    for (int i = 0; i < opt->n_params; i++) {
        tg_tensor *p = opt->params[i];
        const tg_tensor *g = p->grad;
        if (!g)
            continue;
        void *sq = tg__optim_buf(opt, i, 1);
        void *buf = k_buf ? tg__optim_buf(opt, i, k_buf) : NULL;
        void *ga = k_ga ? tg__optim_buf(opt, i, k_ga) : NULL;
        if (p->dtype == TG_F32)
            rmsprop_f32(p->data, g->data, sq, buf, ga, p->numel, &c);
        else
            rmsprop_f64(p->data, g->data, sq, buf, ga, p->numel, &c);
        *(double *)tg__optim_buf(opt, i, 0) += 1;
    }
}

/* The constructor's checks, shared with tg_optim_set_hparam. */
static tg_status check_opts(const char *fn, const tg_rmsprop_opts *o)
{
    if (!tg__nonneg_finite(o->lr))
        return tg__fail(TG_EINVAL, "%s: lr %g must be >= 0 and finite", fn, o->lr);
    if (!(o->alpha >= 0 && o->alpha <= 1))
        return tg__fail(TG_EINVAL, "%s: alpha %g outside [0, 1]", fn, o->alpha);
    if (!(o->eps > 0 && isfinite(o->eps)))
        return tg__fail(TG_EINVAL, "%s: eps %g must be > 0 and finite", fn, o->eps);
    if (!tg__nonneg_finite(o->weight_decay))
        return tg__fail(TG_EINVAL, "%s: weight_decay %g must be >= 0 and finite", fn,
                        o->weight_decay);
    if (!tg__nonneg_finite(o->momentum))
        return tg__fail(TG_EINVAL, "%s: momentum %g must be >= 0 and finite", fn, o->momentum);
    return TG_OK;
}

static const char *const hparams[] = {"alpha", "eps", "weight_decay", "momentum", "centered",
                                      NULL};

static double rmsprop_get(const tg_optim *opt, int k)
{
    const tg_rmsprop_opts *o = opt->impl;
    const double v[] = {o->alpha, o->eps, o->weight_decay, o->momentum, o->centered ? 1 : 0};
    return v[k];
}

static tg_status rmsprop_set(tg_optim *opt, int k, double value, const char *fn)
{
    tg_rmsprop_opts *o = opt->impl, n = *o;
    if (k == 4 && value != 0 && value != 1)
        return tg__fail(TG_EINVAL, "%s: centered %g must be 0 or 1", fn, value);
    switch (k) {
    case 0: n.alpha = value; break;
    case 1: n.eps = value; break;
    case 2: n.weight_decay = value; break;
    case 3: n.momentum = value; break;
    default: n.centered = value != 0; break;
    }
    tg_status st = check_opts(fn, &n);
    if (st != TG_OK)
        return st;
    // Which buffers exist was fixed at creation.
    if ((n.momentum > 0) != (o->momentum > 0) || n.centered != o->centered)
        return tg__fail(TG_ESTATE, "%s: %s %g would add or drop a state buffer; make a new "
                        "optimizer", fn, hparams[k], value);
    *o = n;
    return TG_OK;
}

static const tg__optim_vtable rmsprop_vt = {
    .name = "rmsprop",
    .step = rmsprop_step,
    .hparams = hparams,
    .get_hparam = rmsprop_get,
    .set_hparam = rmsprop_set,
};

tg_rmsprop_opts tg_rmsprop_defaults(void)
{
    return (tg_rmsprop_opts){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, .weight_decay = 0,
                             .momentum = 0, .centered = false};
}

tg_optim *tg_optim_rmsprop(tg_tensor *const *params, int n, const tg_rmsprop_opts *opts)
{
    static const char fn[] = "tg_optim_rmsprop";
    if (tg__optim_check_params(fn, params, n) != TG_OK)
        return NULL;
    tg_rmsprop_opts o = opts ? *opts : tg_rmsprop_defaults();
    if (check_opts(fn, &o) != TG_OK)
        return NULL;
    const char *names[3];
    int nb = 0;
    names[nb++] = "square_avg";
    if (o.momentum > 0)
        names[nb++] = "momentum_buffer";
    if (o.centered)
        names[nb++] = "grad_avg";
    return tg__optim_create(fn, &rmsprop_vt, &o, sizeof o, params, n, nb, names, o.lr);
}
