/* sgd.c - stochastic gradient descent with momentum, dampening, Nesterov and
 * weight decay, step for step as torch.optim.SGD (see optim.h for the
 * formula). The handle and its state come from optim.c. */
#include "optim_internal.h"

/* Loop-invariant coefficients of one step, converted once per parameter to
 * the parameter's type inside the kernel. */
typedef struct sgd_coef {
    double lr, weight_decay, momentum, dampening;
    bool nesterov;
} sgd_coef;

/* p, g, buf (n). buf is NULL without momentum. first: the parameter's first
 * step, when torch seeds the buffer with the gradient itself instead of
 * decaying a zero buffer (the two differ by the (1 - dampening) factor). One
 * branch-free loop per case so that each vectorises (gcc does not unswitch
 * these loops by itself); weight decay and Nesterov are selects. */
#define SGD_KERNEL(NAME, T)                                                                  \
    static void NAME(T *restrict p, const T *restrict g, T *restrict buf, int64_t n,        \
                     const sgd_coef *c, bool first)                                          \
    {                                                                                        \
        const T lr = (T)c->lr, wd = (T)c->weight_decay, mom = (T)c->momentum;                \
        const T keep = (T)(1 - c->dampening);                                                \
        const bool decay = c->weight_decay != 0, nesterov = c->nesterov;                     \
        if (!buf) {                                                                          \
            for (int64_t i = 0; i < n; i++)                                                  \
                p[i] -= lr * (decay ? g[i] + wd * p[i] : g[i]);                              \
        } else if (first) {                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                \
                T d = decay ? g[i] + wd * p[i] : g[i];                                       \
                buf[i] = d;                                                                  \
                p[i] -= lr * (nesterov ? d + mom * d : d);                                   \
            }                                                                                \
        } else {                                                                             \
            for (int64_t i = 0; i < n; i++) {                                                \
                T d = decay ? g[i] + wd * p[i] : g[i];                                       \
                T b = mom * buf[i] + keep * d;                                               \
                buf[i] = b;                                                                  \
                p[i] -= lr * (nesterov ? d + mom * b : b);                                   \
            }                                                                                \
        }                                                                                    \
    }

SGD_KERNEL(sgd_f32, float)
SGD_KERNEL(sgd_f64, double)

static void sgd_step(tg_optim *opt, double lr)
{
    const tg_sgd_opts *o = opt->impl;
    const sgd_coef c = {lr, o->weight_decay, o->momentum, o->dampening, o->nesterov};
    const bool momentum = opt->n_state > 1;
    for (int i = 0; i < opt->n_params; i++) {
        tg_tensor *p = opt->params[i];
        const tg_tensor *g = p->grad;
        if (!g)
            continue;
        double *step = tg__optim_buf(opt, i, 0);
        void *buf = momentum ? tg__optim_buf(opt, i, 1) : NULL;
        bool first = *step == 0;
        if (p->dtype == TG_F32)
            sgd_f32(p->data, g->data, buf, p->numel, &c, first);
        else
            sgd_f64(p->data, g->data, buf, p->numel, &c, first);
        *step += 1;
    }
}

/* The constructor's checks, shared with tg_optim_set_hparam. */
static tg_status check_opts(const char *fn, const tg_sgd_opts *o)
{
    if (!tg__nonneg_finite(o->lr))
        return tg__fail(TG_EINVAL, "%s: lr %g must be >= 0 and finite", fn, o->lr);
    if (!tg__nonneg_finite(o->momentum))
        return tg__fail(TG_EINVAL, "%s: momentum %g must be >= 0 and finite", fn, o->momentum);
    if (!isfinite(o->dampening))
        return tg__fail(TG_EINVAL, "%s: dampening %g must be finite", fn, o->dampening);
    if (!tg__nonneg_finite(o->weight_decay))
        return tg__fail(TG_EINVAL, "%s: weight_decay %g must be >= 0 and finite", fn,
                        o->weight_decay);
    // torch's rule: Nesterov needs a momentum term and undamped momentum.
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return tg__fail(TG_EINVAL, "%s: nesterov needs momentum > 0 and dampening 0 "
                        "(momentum %g, dampening %g)", fn, o->momentum, o->dampening);
    return TG_OK;
}

static const char *const hparams[] = {"momentum", "dampening", "weight_decay", "nesterov", NULL};

static double sgd_get(const tg_optim *opt, int k)
{
    const tg_sgd_opts *o = opt->impl;
    const double v[] = {o->momentum, o->dampening, o->weight_decay, o->nesterov ? 1 : 0};
    return v[k];
}

static tg_status sgd_set(tg_optim *opt, int k, double value, const char *fn)
{
    tg_sgd_opts *o = opt->impl, n = *o;
    if (k == 3 && value != 0 && value != 1)
        return tg__fail(TG_EINVAL, "%s: nesterov %g must be 0 or 1", fn, value);
    switch (k) {
    case 0: n.momentum = value; break;
    case 1: n.dampening = value; break;
    case 2: n.weight_decay = value; break;
    default: n.nesterov = value != 0; break;
    }
    tg_status st = check_opts(fn, &n);
    if (st != TG_OK)
        return st;
    // The momentum buffer exists only when momentum was nonzero at creation.
    if ((n.momentum != 0) != (o->momentum != 0))
        return tg__fail(TG_ESTATE, "%s: momentum %g -> %g would add or drop the momentum "
                        "buffer; make a new optimizer", fn, o->momentum, n.momentum);
    *o = n;
    return TG_OK;
}

static const tg__optim_vtable sgd_vt = {
    .name = "sgd",
    .step = sgd_step,
    .hparams = hparams,
    .get_hparam = sgd_get,
    .set_hparam = sgd_set,
};

tg_sgd_opts tg_sgd_defaults(void)
{
    return (tg_sgd_opts){.lr = 0.01, .momentum = 0, .dampening = 0, .weight_decay = 0,
                         .nesterov = false};
}

tg_optim *tg_optim_sgd(tg_tensor *const *params, int n, const tg_sgd_opts *opts)
{
    static const char fn[] = "tg_optim_sgd";
    if (tg__optim_check_params(fn, params, n) != TG_OK)
        return NULL;
    tg_sgd_opts o = opts ? *opts : tg_sgd_defaults();
    if (check_opts(fn, &o) != TG_OK)
        return NULL;
    static const char *const names[] = {"momentum_buffer"};
    return tg__optim_create(fn, &sgd_vt, &o, sizeof o, params, n, o.momentum != 0 ? 1 : 0,
                            names, o.lr);
}
