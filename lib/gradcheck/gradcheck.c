/* gradcheck.c - compares the tape's gradients with central finite differences,
 * in float64. The analytic Jacobian comes from one backward per output element
 * (tg_grad with a one-hot seed); the numeric one from two evaluations of f per
 * input element. In direction mode both sides are projected instead: random
 * output weights r and random input directions v give <r, J v> each way.
 * gradgradcheck reuses all of this on g(x) = d<r, f(x)>/dx built with
 * TG_CREATE_GRAPH. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/tape_internal.h"
#include "tg_internal.h"

tg_gradcheck_opts tg_gradcheck_defaults(void)
{
    return (tg_gradcheck_opts){.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3, .directions = 0,
                               .seed = 1};
}

typedef struct check {
    const char *fn;
    tg_fn f;
    void *ctx;
    int n;
    tg_tensor **xs;      /* float64 leaf copies of the inputs, owned here */
    tg_tape *tape;
    tg_gradcheck_opts o;
    tg_gradcheck_report rep;
    double worst_ratio;
} check;

static tg_status eval(check *c, tg_tensor **y)
{
    tg_tensor *out = c->f(c->xs, c->n, c->ctx);
    if (!out) // the function's own message says why; keep it
        return tg_last_status() != TG_OK
                   ? tg_last_status()
                   : tg__fail(TG_EINVAL, "%s: the function returned NULL", c->fn);
    if (out->dtype != TG_F64)
        return tg__fail(TG_EDTYPE, "%s: the function returned %s for float64 inputs", c->fn,
                        tg_dtype_name(out->dtype));
    *y = out;
    return TG_OK;
}

static void compare(check *c, int input, int64_t index, int64_t output, double analytic,
                    double numeric)
{
    double err = fabs(analytic - numeric);
    double allowed = c->o.atol + c->o.rtol * fabs(numeric);
    double ratio = err / allowed;
    if (isnan(err))
        ratio = INFINITY;
    c->rep.checked++;
    if (ratio > c->worst_ratio || c->rep.worst_input < 0) {
        c->worst_ratio = ratio;
        c->rep.worst_input = input;
        c->rep.worst_index = index;
        c->rep.worst_output = output;
        c->rep.analytic = analytic;
        c->rep.numeric = numeric;
        c->rep.abs_error = err;
        c->rep.allowed = allowed;
    }
}

/* Analytic gradients of <seed, y> for every input, flattened into g[i]. */
static tg_status analytic_vjp(check *c, tg_tensor *y, tg_tensor *seed, double **g)
{
    if (!y->requires_grad) {
        // y does not depend on the inputs through any recorded op: zero Jacobian.
        for (int i = 0; i < c->n; i++)
            memset(g[i], 0, (size_t)c->xs[i]->numel * sizeof(double));
        return TG_OK;
    }
    tg_tensor *grads[64];
    tg_status s = tg_grad(1, &y, &seed, c->n, c->xs, grads, TG_RETAIN_GRAPH | TG_ALLOW_UNUSED);
    for (int i = 0; i < c->n && s == TG_OK; i++)
        s = tg_tensor_to_doubles(grads[i], g[i]);
    return s;
}

/* Evaluates f at x + h v (v[i] NULL: input i unchanged) and gives <r, f> in
 * *dot, or for r NULL the whole output in out; the tape is reset after. */
static tg_status eval_shifted(check *c, double **v, double h, const double *r, double *dot,
                              double *out, int64_t m)
{
    for (int i = 0; i < c->n; i++)
        if (v[i])
            for (int64_t k = 0; k < c->xs[i]->numel; k++)
                ((double *)c->xs[i]->data)[k] += h * v[i][k];
    tg_tensor *y = NULL;
    tg_status s = eval(c, &y);
    if (s == TG_OK && y->numel != m)
        s = tg__fail(TG_ESHAPE, "%s: the function's output size changed (%lld vs %lld)", c->fn,
                     (long long)y->numel, (long long)m);
    if (s == TG_OK) {
        const double *yd = y->data;
        if (r) {
            double acc = 0;
            for (int64_t j = 0; j < m; j++)
                acc += r[j] * yd[j];
            *dot = acc;
        } else {
            memcpy(out, yd, (size_t)m * sizeof *out);
        }
    }
    for (int i = 0; i < c->n; i++)
        if (v[i])
            for (int64_t k = 0; k < c->xs[i]->numel; k++)
                ((double *)c->xs[i]->data)[k] -= h * v[i][k];
    tg_tape_reset(c->tape);
    return s;
}

static tg_status full_jacobian(check *c, int64_t m)
{
    // Analytic rows first, while the first evaluation's graph is alive.
    int64_t total = 0;
    for (int i = 0; i < c->n; i++)
        total += c->xs[i]->numel;
    double *ja = tg__calloc((size_t)(m * total) + 1, sizeof *ja);
    double *plus = tg__malloc((size_t)(2 * m + 1) * sizeof *plus);
    double *rows[64];
    if (!ja || !plus) {
        tg__free(ja);
        tg__free(plus);
        return tg__fail(TG_ENOMEM, "%s: out of memory for a %lld x %lld Jacobian", c->fn,
                        (long long)m, (long long)total);
    }
    tg_tensor *y = NULL;
    tg_status s = eval(c, &y);
    for (int64_t j = 0; j < m && s == TG_OK; j++) {
        tg_tensor *seed = tg_full(TG_F64, y->ndim, y->shape, 0.0);
        if (!seed) {
            s = tg_last_status();
            break;
        }
        ((double *)seed->data)[j] = 1.0;
        double *base = ja + j * total;
        for (int i = 0; i < c->n; i++) {
            rows[i] = base;
            base += c->xs[i]->numel;
        }
        s = analytic_vjp(c, y, seed, rows);
    }
    tg_tape_reset(c->tape);
    // Numeric columns: one input element at a time.
    double *minus = plus + m;
    double *none[64] = {0};
    int64_t col = 0;
    for (int i = 0; i < c->n && s == TG_OK; i++) {
        double *x = c->xs[i]->data;
        for (int64_t k = 0; k < c->xs[i]->numel && s == TG_OK; k++, col++) {
            double saved = x[k];
            x[k] = saved + c->o.eps;
            s = eval_shifted(c, none, 0, NULL, NULL, plus, m);
            x[k] = saved - c->o.eps;
            if (s == TG_OK)
                s = eval_shifted(c, none, 0, NULL, NULL, minus, m);
            x[k] = saved;
            for (int64_t j = 0; j < m && s == TG_OK; j++)
                compare(c, i, k, j, ja[j * total + col], (plus[j] - minus[j]) / (2 * c->o.eps));
        }
    }
    tg__free(ja);
    tg__free(plus);
    return s;
}

static tg_status directions(check *c, int64_t m, const int64_t *yshape, int yndim)
{
    tg_rng rng = tg_rng_seeded(c->o.seed);
    double *r = tg__malloc((size_t)m * sizeof *r + 1);
    double *v[64] = {0}, *g[64] = {0};
    tg_status s = r ? TG_OK : TG_ENOMEM;
    for (int i = 0; i < c->n && s == TG_OK; i++) {
        v[i] = tg__malloc((size_t)c->xs[i]->numel * sizeof(double) + 1);
        g[i] = tg__malloc((size_t)c->xs[i]->numel * sizeof(double) + 1);
        if (!v[i] || !g[i])
            s = TG_ENOMEM;
    }
    if (s == TG_ENOMEM)
        tg__fail(s, "%s: out of memory", c->fn);
    for (int64_t j = 0; j < m && s == TG_OK; j++)
        r[j] = tg_rng_normal(&rng);
    if (s == TG_OK) {
        tg_tensor *y = NULL;
        s = eval(c, &y);
        tg_tensor *seed = s == TG_OK ? tg_full(TG_F64, yndim, yshape, 0.0) : NULL;
        if (s == TG_OK && !seed)
            s = tg_last_status();
        if (s == TG_OK) {
            memcpy(seed->data, r, (size_t)m * sizeof *r);
            s = analytic_vjp(c, y, seed, g);
        }
        tg_tape_reset(c->tape);
    }
    for (int d = 0; d < c->o.directions && s == TG_OK; d++) {
        double analytic = 0, plus = 0, minus = 0;
        for (int i = 0; i < c->n; i++)
            for (int64_t k = 0; k < c->xs[i]->numel; k++) {
                v[i][k] = tg_rng_normal(&rng);
                analytic += g[i][k] * v[i][k];
            }
        s = eval_shifted(c, v, c->o.eps, r, &plus, NULL, m);
        if (s == TG_OK)
            s = eval_shifted(c, v, -c->o.eps, r, &minus, NULL, m);
        if (s == TG_OK)
            compare(c, -1, d, -1, analytic, (plus - minus) / (2 * c->o.eps));
    }
    tg__free(r);
    for (int i = 0; i < c->n; i++) {
        tg__free(v[i]);
        tg__free(g[i]);
    }
    return s;
}

static void describe(check *c)
{
    tg_gradcheck_report *r = &c->rep;
    r->passed = c->worst_ratio <= 1.0;
    if (r->checked == 0)
        snprintf(r->message, sizeof r->message, "nothing to compare (empty inputs or output)");
    else if (r->worst_output < 0)
        snprintf(r->message, sizeof r->message,
                 "%s: worst direction %lld: analytic %.10g vs numeric %.10g (error %.3g, "
                 "allowed %.3g)", r->passed ? "ok" : "mismatch", (long long)r->worst_index,
                 r->analytic, r->numeric, r->abs_error, r->allowed);
    else
        snprintf(r->message, sizeof r->message,
                 "%s: worst at input %d element %lld (output %lld): analytic %.10g vs numeric "
                 "%.10g (error %.3g, allowed %.3g)", r->passed ? "ok" : "mismatch",
                 r->worst_input, (long long)r->worst_index, (long long)r->worst_output,
                 r->analytic, r->numeric, r->abs_error, r->allowed);
}

static tg_status run_check(check *c, tg_tensor *const *inputs)
{
    tg_tensor *xs[64] = {0};
    c->xs = xs;
    c->rep.worst_input = -1;
    c->rep.worst_output = -1;
    tg_tape *prev = tg_tape_current();
    bool prev_mode = tg_set_grad_enabled(true);
    c->tape = tg_tape_new();
    tg_status s = c->tape ? TG_OK : TG_ENOMEM;
    for (int i = 0; i < c->n && s == TG_OK; i++) {
        xs[i] = tg_tensor_clone_as(inputs[i], TG_F64);
        s = xs[i] ? tg_tensor_set_requires_grad(xs[i], true) : tg_last_status();
    }
    tg_tensor *y = NULL;
    if (s == TG_OK)
        s = eval(c, &y);
    int64_t m = s == TG_OK ? y->numel : 0;
    int64_t yshape[TG_MAX_DIMS];
    int yndim = s == TG_OK ? y->ndim : 0;
    if (s == TG_OK)
        memcpy(yshape, y->shape, sizeof yshape);
    tg_tape_reset(c->tape);
    if (s == TG_OK)
        s = c->o.directions > 0 ? directions(c, m, yshape, yndim) : full_jacobian(c, m);
    for (int i = 0; i < c->n; i++)
        tg_tensor_free(xs[i]);
    tg_tape_free(c->tape);
    tg_tape_set_current(prev);
    tg_set_grad_enabled(prev_mode);
    if (s != TG_OK)
        return s;
    describe(c);
    if (!c->rep.passed)
        return tg__fail(TG_EGRAD, "%s: %s", c->fn, c->rep.message);
    return TG_OK;
}

static tg_status setup(check *c, const char *fn, tg_fn f, void *ctx, int n,
                       tg_tensor *const *inputs, const tg_gradcheck_opts *opts)
{
    *c = (check){.fn = fn, .f = f, .ctx = ctx, .n = n};
    c->o = opts ? *opts : tg_gradcheck_defaults();
    if (!f || !inputs || n < 1 || n > 64)
        return tg__fail(TG_EINVAL, "%s: need a function and 1..64 inputs (got %d)", fn, n);
    for (int i = 0; i < n; i++)
        if (!inputs[i])
            return tg__fail(TG_EINVAL, "%s: inputs[%d] is NULL", fn, i);
    if (!(c->o.eps > 0) || !(c->o.atol >= 0) || !(c->o.rtol >= 0) || c->o.directions < 0)
        return tg__fail(TG_EINVAL, "%s: need eps > 0, atol >= 0, rtol >= 0, directions >= 0 "
                                   "(got %g, %g, %g, %d)", fn, c->o.eps, c->o.atol, c->o.rtol,
                        c->o.directions);
    return TG_OK;
}

/* The report is always written: the check's result, or, when the check could
 * not run (bad arguments, a failing function or user backward), passed =
 * false and the error's message. */
static tg_status finish(const check *c, tg_status s, tg_gradcheck_report *report)
{
    if (!report)
        return s;
    if (s == TG_OK || s == TG_EGRAD) {
        *report = c->rep;
        return s;
    }
    *report = (tg_gradcheck_report){.passed = false, .worst_input = -1, .worst_index = -1,
                                    .worst_output = -1};
    snprintf(report->message, sizeof report->message, "%s", tg_last_error());
    return s;
}

tg_status tg_gradcheck(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                       const tg_gradcheck_opts *opts, tg_gradcheck_report *report)
{
    check c;
    tg_status s = setup(&c, "tg_gradcheck", f, ctx, n_inputs, inputs, opts);
    if (s == TG_OK)
        s = run_check(&c, inputs);
    return finish(&c, s, report);
}

/* ---- second order ---- */

typedef struct second {
    tg_fn f;
    void *ctx;
    tg_tensor *r; /* output weights, float64, caller-owned here */
} second;

/* g(x) = d<r, f(x)>/dx for every input, flattened and joined. */
static tg_tensor *first_derivative(tg_tensor *const *xs, int n, void *ctx)
{
    second *sc = ctx;
    tg_tensor *y = sc->f(xs, n, sc->ctx);
    if (!y)
        return NULL;
    tg_tensor *grads[64], *flat[64];
    if (!y->requires_grad) {
        for (int i = 0; i < n; i++)
            grads[i] = tg_full_like(xs[i], 0.0);
    } else if (tg_grad(1, &y, &sc->r, n, xs, grads, TG_CREATE_GRAPH | TG_ALLOW_UNUSED) != TG_OK) {
        return NULL;
    }
    for (int i = 0; i < n; i++)
        flat[i] = tg_reshape(grads[i], 1, (int64_t[]){-1});
    return tg_concat(n, flat, 0);
}

tg_status tg_gradgradcheck(tg_fn f, void *ctx, int n_inputs, tg_tensor *const *inputs,
                           const tg_gradcheck_opts *opts, tg_gradcheck_report *report)
{
    check c;
    tg_status s = setup(&c, "tg_gradgradcheck", f, ctx, n_inputs, inputs, opts);
    if (s != TG_OK)
        return finish(&c, s, report);
    // One evaluation to learn the output's shape for the weights r.
    second sc = {.f = f, .ctx = ctx};
    tg_tape *prev = tg_tape_current();
    tg_tape *tape = tg_tape_new();
    tg_tensor *xs[64] = {0};
    s = tape ? TG_OK : TG_ENOMEM;
    for (int i = 0; i < n_inputs && s == TG_OK; i++)
        s = (xs[i] = tg_tensor_clone_as(inputs[i], TG_F64)) ? TG_OK : tg_last_status();
    tg_tensor *y = s == TG_OK ? f(xs, n_inputs, ctx) : NULL;
    if (s == TG_OK && !y)
        s = tg_last_status() != TG_OK
                ? tg_last_status()
                : tg__fail(TG_EINVAL, "%s: the function returned NULL", c.fn);
    if (s == TG_OK) {
        tg_rng rng = tg_rng_seeded(c.o.seed ^ 0x5eed);
        sc.r = tg_tensor_normal(TG_F64, y->ndim, y->shape, 0.0, 1.0, &rng);
        s = sc.r ? TG_OK : tg_last_status();
    }
    for (int i = 0; i < n_inputs; i++)
        tg_tensor_free(xs[i]);
    tg_tape_free(tape);
    tg_tape_set_current(prev);
    if (s == TG_OK) {
        c.f = first_derivative;
        c.ctx = &sc;
        s = run_check(&c, inputs);
    }
    tg_tensor_free(sc.r);
    return finish(&c, s, report);
}
