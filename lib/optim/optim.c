/* optim.c - the optimizer handle common to every algorithm: parameter checks,
 * the single state allocation, step dispatch, lr and schedule, zero_grad and
 * state inspection. The update rules are in sgd.c, adam.c and rmsprop.c. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "optim_internal.h"

/* State buffers start on cache-line boundaries so that the update loops can
 * be vectorised without peeling and two buffers never share a line. */
#define ALIGN 64

static size_t align_up(size_t x) { return (x + (ALIGN - 1)) & ~(size_t)(ALIGN - 1); }

tg_status tg__optim_check_params(const char *fn, tg_tensor *const *params, int n)
{
    if (!params)
        return tg__fail(TG_EINVAL, "%s: params is NULL", fn);
    if (n <= 0)
        return tg__fail(TG_EINVAL, "%s: n is %d, need at least one param", fn, n);
    for (int i = 0; i < n; i++) {
        const tg_tensor *p = params[i];
        if (!p)
            return tg__fail(TG_EINVAL, "%s: params[%d] is NULL", fn, i);
        // A tape tensor dies at the next tg_tape_reset: the optimizer would
        // keep a dangling pointer.
        if (p->tape)
            return tg__fail(TG_EINVAL, "%s: params[%d] belongs to a tape (an op result); "
                            "parameters must be caller-owned leaves", fn, i);
        if (!p->requires_grad)
            return tg__fail(TG_EINVAL, "%s: params[%d] does not require grad "
                            "(tg_tensor_set_requires_grad)", fn, i);
        if (p->dtype != TG_F32 && p->dtype != TG_F64)
            return tg__fail(TG_EINVAL, "%s: params[%d] has invalid dtype %d", fn, i,
                            (int)p->dtype);
        // Updating one tensor twice per step is never intended (torch rejects it too).
        for (int j = 0; j < i; j++)
            if (params[j] == p)
                return tg__fail(TG_EINVAL, "%s: params[%d] is the same tensor as params[%d]",
                                fn, i, j);
    }
    return TG_OK;
}

static void init_header(tg_tensor *h, tg_dtype dtype, int ndim, const int64_t *shape,
                        const int64_t *strides, int64_t numel, void *data)
{
    memset(h, 0, sizeof *h);
    h->dtype = dtype;
    h->ndim = ndim;
    if (ndim > 0) {
        memcpy(h->shape, shape, (size_t)ndim * sizeof *shape);
        memcpy(h->strides, strides, (size_t)ndim * sizeof *strides);
    }
    h->numel = numel;
    h->data = data;
    h->gen = TG__GEN_CALLER;
    // tape NULL, owns_data false: the data is a slice of the optimizer's block.
}

tg_optim *tg__optim_create(const char *fn, const tg__optim_vtable *vt, const void *impl,
                           size_t impl_size, tg_tensor *const *params, int n, int n_buffers,
                           const char *const *buffer_names, double lr)
{
    int n_state = 1 + n_buffers;
    // Layout: handle | impl | params[n] | headers[n*n_state] | steps[n] | pad | buffers.
    size_t off_impl = align_up(sizeof(tg_optim));
    size_t off_params = align_up(off_impl + impl_size);
    size_t off_headers = align_up(off_params + (size_t)n * sizeof(tg_tensor *));
    size_t off_steps = align_up(off_headers + (size_t)n * (size_t)n_state * sizeof(tg_tensor));
    size_t off_data = align_up(off_steps + (size_t)n * sizeof(double));
    size_t data_bytes = 0;
    for (int i = 0; i < n; i++) {
        size_t bytes = align_up((size_t)params[i]->numel * tg_dtype_size(params[i]->dtype));
        // Sizes of live tensors cannot overflow one by one, but their sum could.
        if (n_buffers && bytes > (SIZE_MAX / 2 - off_data - data_bytes) / (size_t)n_buffers)
            return tg__fail_null(TG_ERANGE, "%s: state too large", fn);
        data_bytes += bytes * (size_t)n_buffers;
    }
    // ALIGN - 1 extra bytes: malloc only promises 16-byte alignment.
    char *block = tg__malloc(off_data + data_bytes + ALIGN - 1);
    if (!block)
        return tg__fail_null(TG_ENOMEM, "%s: out of memory for %zu bytes of state", fn,
                             off_data + data_bytes);
    tg_optim *opt = (tg_optim *)(void *)block;
    memset(opt, 0, sizeof *opt);
    opt->vt = vt;
    opt->impl = block + off_impl;
    memcpy(opt->impl, impl, impl_size);
    opt->n_params = n;
    opt->n_state = n_state;
    opt->state_names[0] = "step";
    for (int k = 0; k < n_buffers; k++)
        opt->state_names[1 + k] = buffer_names[k];
    opt->params = (tg_tensor **)(void *)(block + off_params);
    opt->state = (tg_tensor *)(void *)(block + off_headers);
    opt->lr = lr;
    double *steps = (double *)(void *)(block + off_steps);
    char *data = (char *)(((uintptr_t)(block + off_data) + (ALIGN - 1)) & ~(uintptr_t)(ALIGN - 1));
    memset(data, 0, data_bytes);
    for (int i = 0; i < n; i++) {
        tg_tensor *p = params[i];
        opt->params[i] = p;
        tg_tensor *h = opt->state + (size_t)i * (size_t)n_state;
        steps[i] = 0;
        init_header(&h[0], TG_F64, 0, NULL, NULL, 1, &steps[i]);
        size_t bytes = align_up((size_t)p->numel * tg_dtype_size(p->dtype));
        for (int k = 1; k < n_state; k++) {
            init_header(&h[k], p->dtype, p->ndim, p->shape, p->strides, p->numel, data);
            data += bytes;
        }
    }
    return opt;
}

void tg_optim_free(tg_optim *opt)
{
    // Everything lives in the block that starts with the handle.
    tg__free(opt);
}

tg_status tg_optim_step(tg_optim *opt)
{
    if (!opt)
        return tg__fail(TG_EINVAL, "tg_optim_step: opt is NULL");
    double lr = opt->has_schedule ? tg__schedule_eval(&opt->schedule, opt->step_count) : opt->lr;
    // A schedule can drive the rate out of range (an exponential one past
    // overflow): nothing is written rather than -inf into every parameter.
    if (!tg__nonneg_finite(lr))
        return tg__fail(TG_ERANGE, "tg_optim_step: the schedule gives lr %g at step %lld; "
                                   "it must be >= 0 and finite", lr,
                        (long long)opt->step_count);
    opt->vt->step(opt, lr);
    opt->step_count++;
    return TG_OK;
}

void tg_optim_zero_grad(tg_optim *opt)
{
    if (!opt) {
        tg__null_arg("tg_optim_zero_grad", "opt");
        return;
    }
    for (int i = 0; i < opt->n_params; i++) {
        tg_tensor *g = opt->params[i]->grad;
        if (g)
            memset(g->data, 0, (size_t)g->numel * tg_dtype_size(g->dtype));
    }
}

double tg_optim_get_lr(const tg_optim *opt)
{
    if (!opt) {
        tg__fail(TG_EINVAL, "tg_optim_get_lr: opt is NULL");
        return NAN;
    }
    return opt->has_schedule ? tg__schedule_eval(&opt->schedule, opt->step_count) : opt->lr;
}

tg_status tg_optim_set_lr(tg_optim *opt, double lr)
{
    if (!opt)
        return tg__fail(TG_EINVAL, "tg_optim_set_lr: opt is NULL");
    if (!tg__nonneg_finite(lr))
        return tg__fail(TG_EINVAL, "tg_optim_set_lr: lr %g must be >= 0 and finite", lr);
    // Silently overriding would be lost at the next step anyway.
    if (opt->has_schedule)
        return tg__fail(TG_ESTATE, "tg_optim_set_lr: a schedule is attached; detach it with "
                        "tg_optim_set_schedule(opt, NULL) first");
    opt->lr = lr;
    return TG_OK;
}

tg_status tg_optim_set_schedule(tg_optim *opt, const tg_schedule *sched)
{
    if (!opt)
        return tg__fail(TG_EINVAL, "tg_optim_set_schedule: opt is NULL");
    if (!sched) {
        if (opt->has_schedule)
            opt->lr = tg__schedule_eval(&opt->schedule, opt->step_count);
        opt->has_schedule = false;
        return TG_OK;
    }
    tg_status st = tg__schedule_check("tg_optim_set_schedule", sched);
    if (st != TG_OK)
        return st;
    opt->schedule = *sched;
    opt->has_schedule = true;
    return TG_OK;
}

/* Getters given NULL answer neutrally and record TG_EINVAL, as the tensor ones do. */
const char *tg_optim_name(const tg_optim *opt)
{
    if (!opt)
        tg__null_arg("tg_optim_name", "opt");
    return opt ? opt->vt->name : "?";
}

int tg_optim_num_params(const tg_optim *opt)
{
    if (!opt)
        tg__null_arg("tg_optim_num_params", "opt");
    return opt ? opt->n_params : 0;
}

tg_tensor *tg_optim_param(const tg_optim *opt, int index)
{
    if (!opt)
        return tg__fail_null(TG_EINVAL, "tg_optim_param: opt is NULL");
    if (index < 0 || index >= opt->n_params)
        return tg__fail_null(TG_ERANGE, "tg_optim_param: index %d outside [0, %d)", index,
                             opt->n_params);
    return opt->params[index];
}

int64_t tg_optim_step_count(const tg_optim *opt)
{
    if (!opt)
        tg__null_arg("tg_optim_step_count", "opt");
    return opt ? opt->step_count : 0;
}

tg_status tg_optim_set_step_count(tg_optim *opt, int64_t count)
{
    if (!opt)
        return tg__fail(TG_EINVAL, "tg_optim_set_step_count: opt is NULL");
    if (count < 0)
        return tg__fail(TG_EINVAL, "tg_optim_set_step_count: count %lld is negative",
                        (long long)count);
    opt->step_count = count;
    return TG_OK;
}

const char *tg_optim_state_name(const tg_optim *opt, int k)
{
    if (!opt) {
        tg__null_arg("tg_optim_state_name", "opt");
        return NULL;
    }
    if (k < 0 || k >= opt->n_state) {
        tg__fail(TG_ERANGE, "tg_optim_state_name: slot %d outside [0, %d)", k, opt->n_state);
        return NULL;
    }
    return opt->state_names[k];
}

tg_tensor *tg_optim_state(tg_optim *opt, int param_index, const char *name)
{
    if (!opt)
        return tg__fail_null(TG_EINVAL, "tg_optim_state: opt is NULL");
    if (!name)
        return tg__fail_null(TG_EINVAL, "tg_optim_state: name is NULL");
    if (param_index < 0 || param_index >= opt->n_params)
        return tg__fail_null(TG_ERANGE, "tg_optim_state: param index %d outside [0, %d)",
                             param_index, opt->n_params);
    for (int k = 0; k < opt->n_state; k++)
        if (strcmp(name, opt->state_names[k]) == 0)
            return &opt->state[(size_t)param_index * (size_t)opt->n_state + (size_t)k];
    char names[128] = "";
    size_t len = 0;
    for (int k = 0; k < opt->n_state && len < sizeof names; k++) {
        int w = snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "",
                         opt->state_names[k]);
        len += w > 0 ? (size_t)w : 0;
    }
    return tg__fail_null(TG_EINVAL, "tg_optim_state: %s has no state \"%s\" (it keeps: %s)",
                         opt->vt->name, name, names);
}

/* ---- hyperparameters and the schedule, for checkpoints ---- */

const char *tg_optim_hparam_name(const tg_optim *opt, int k)
{
    if (!opt || k < 0)
        return NULL;
    for (int i = 0; opt->vt->hparams && opt->vt->hparams[i]; i++)
        if (i == k)
            return opt->vt->hparams[i];
    return NULL;
}

/* Index of hyperparameter name, or -1 with the valid names in the message. */
static int hparam_index(const tg_optim *opt, const char *name, const char *fn)
{
    char names[160] = "";
    size_t len = 0;
    for (int i = 0; opt->vt->hparams && opt->vt->hparams[i]; i++) {
        if (strcmp(opt->vt->hparams[i], name) == 0)
            return i;
        int w = snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                         opt->vt->hparams[i]);
        len += w > 0 && (size_t)w < sizeof names - len ? (size_t)w : 0;
    }
    tg__fail(TG_EINVAL, "%s: %s has no hyperparameter \"%s\" (it has: %s)", fn, opt->vt->name,
             name, names);
    return -1;
}

tg_status tg_optim_get_hparam(const tg_optim *opt, const char *name, double *out)
{
    static const char fn[] = "tg_optim_get_hparam";
    if (!opt || !name || !out)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !opt ? "opt" : !name ? "name" : "out");
    int k = hparam_index(opt, name, fn);
    if (k < 0)
        return TG_EINVAL;
    *out = opt->vt->get_hparam(opt, k);
    return TG_OK;
}

tg_status tg_optim_set_hparam(tg_optim *opt, const char *name, double value)
{
    static const char fn[] = "tg_optim_set_hparam";
    if (!opt || !name)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !opt ? "opt" : "name");
    int k = hparam_index(opt, name, fn);
    if (k < 0)
        return TG_EINVAL;
    return opt->vt->set_hparam(opt, k, value, fn);
}

bool tg_optim_get_schedule(const tg_optim *opt, tg_schedule *out)
{
    if (!opt || !opt->has_schedule)
        return false;
    if (out)
        *out = opt->schedule;
    return true;
}
