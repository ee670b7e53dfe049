/* model.c - the models: the Sequential one (adding layers with shape
 * inference, automatic names, parameter creation, the forward pass) and the
 * functional one (layers registered by name and called on tensors by user
 * code, built on their first call); parameter and buffer lists and the
 * Keras-style summary of both. Also the helpers every layer file shares. The
 * layers themselves live in dense.c, conv2d.c, pool.c, simple.c, norm.c,
 * embedding.c and attention.c. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "nn/nn_internal.h"
#include "ops/ops_internal.h"

struct tg_model {
    tg_dtype dtype;
    tg_init_scheme scheme;
    tg_rng rng;
    bool training;
    int in_ndim;
    int64_t in_shape[TG_MAX_DIMS];
    tg_layer **layers;
    int n_layers, cap_layers;
    tg_tensor **params; /* every layer's parameters, in order */
    int n_params, cap_params;
    tg_tensor **buffers; /* every layer's buffers, in order */
    int n_buffers, cap_buffers;
    bool functional; /* tg_model_new_functional: layers are called, not stacked */
    tg__relay relay; /* tg_model_forward with grad mode off */
};

/* ---- helpers shared by the layer files ---- */

tg_layer *tg__layer_alloc(const tg__layer_vtable *vt, const char *fn)
{
    tg_layer *l = tg__calloc(1, vt->size);
    if (!l)
        return tg__fail_null(TG_ENOMEM, "%s: out of memory", fn);
    l->vt = vt;
    snprintf(l->name, sizeof l->name, "%s", vt->base);
    return l;
}

void tg__layer_drop_params(tg_layer *layer)
{
    for (int i = 0; i < layer->n_params; i++) {
        tg_tensor_free(layer->params[i]);
        layer->params[i] = NULL;
    }
    layer->n_params = 0;
    for (int i = 0; i < layer->n_buffers; i++) {
        tg_tensor_free(layer->buffers[i]);
        layer->buffers[i] = NULL;
    }
    layer->n_buffers = 0;
}

tg_status tg__add_buffer(tg_layer *layer, const tg__build_ctx *ctx, const char *name, int ndim,
                         const int64_t *shape, double value)
{
    if (layer->n_buffers == TG__LAYER_MAX_BUFFERS)
        return tg__fail(TG_EINVAL, "%s: too many buffers", ctx->where); // internal
    tg_tensor *t = tg__tensor_alloc(NULL, ctx->where, ctx->dtype, ndim, shape, false);
    if (!t)
        return tg_last_status();
    tg_tensor_fill(t, value);
    layer->buffers[layer->n_buffers] = t;
    layer->buffer_names[layer->n_buffers++] = name;
    return TG_OK;
}

tg_status tg__need_shape(const tg_layer *layer, const char *where, const char *need, int in_ndim,
                         const int64_t *in_shape)
{
    char s[TG__SHAPE_STR];
    return tg__fail(TG_ESHAPE, "%s: %s needs %s per sample, got %s", where, layer->vt->type,
                    need, tg__batch_shape_str(s, in_ndim, in_shape));
}

const char *tg__batch_shape_str(char *buf, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, TG__SHAPE_STR, "(None");
    for (int i = 0; i < ndim && used < TG__SHAPE_STR; i++)
        used += (size_t)snprintf(buf + used, TG__SHAPE_STR - used, ", %lld",
                                 (long long)shape[i]);
    if (used < TG__SHAPE_STR)
        snprintf(buf + used, TG__SHAPE_STR - used, ")");
    return buf;
}

int64_t tg__out_size(int64_t in, int64_t k, int64_t s, int64_t d, tg_padding mode, int64_t pad,
                     int64_t *pad_lo, int64_t *pad_hi)
{
    // The ops' own rule (ops/geometry.c), so a layer's inferred shape is
    // always the shape its op produces.
    tg__window_pads(mode, in, k, s, d, pad, pad, pad_lo, pad_hi);
    return tg__window_out(in, k, s, d, *pad_lo, *pad_hi);
}

void tg_layer_free(tg_layer *layer)
{
    if (!layer || layer->owned)
        return;
    tg__layer_drop_params(layer);
    tg__free(layer);
}

/* Frees a layer whatever its state (the model's own teardown). */
static void layer_destroy(tg_layer *layer)
{
    layer->owned = false;
    tg_layer_free(layer);
}

/* Getters given NULL record TG_EINVAL (see tg__null_arg) besides returning
 * their documented neutral value; true when `p` is usable. */
static bool have(const void *p, const char *fn, const char *what)
{
    if (!p)
        tg__null_arg(fn, what);
    return p != NULL;
}

/* Scalars in n tensors (a parameter or buffer count). */
static int64_t numel_sum(tg_tensor *const *ts, int n)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += ts[i]->numel;
    return total;
}

const char *tg_layer_name(const tg_layer *layer)
{
    return have(layer, "tg_layer_name", "layer") ? layer->name : "?";
}

const char *tg_layer_type(const tg_layer *layer)
{
    return have(layer, "tg_layer_type", "layer") ? layer->vt->type : "?";
}

const int64_t *tg_layer_output_shape(const tg_layer *layer, int *ndim)
{
    if (!have(layer, "tg_layer_output_shape", "layer") || !layer->built) {
        if (ndim)
            *ndim = 0;
        return NULL;
    }
    if (ndim)
        *ndim = layer->out_ndim;
    return layer->out_shape;
}

tg_tensor *const *tg_layer_params(const tg_layer *layer, int *n)
{
    int count = have(layer, "tg_layer_params", "layer") ? layer->n_params : 0;
    if (n)
        *n = count;
    return count ? layer->params : NULL;
}

int64_t tg_layer_param_count(const tg_layer *layer)
{
    if (!have(layer, "tg_layer_param_count", "layer"))
        return 0;
    return numel_sum(layer->params, layer->n_params);
}

const char *tg_layer_param_name(const tg_layer *layer, int i)
{
    if (!have(layer, "tg_layer_param_name", "layer"))
        return NULL;
    if (i < 0 || i >= layer->n_params)
        return tg__fail_null(TG_ERANGE, "tg_layer_param_name: index %d outside 0..%d", i,
                             layer->n_params - 1);
    if (layer->param_names[i])
        return layer->param_names[i];
    return i == 0 ? "weight" : "bias";
}

tg_tensor *const *tg_layer_buffers(const tg_layer *layer, int *n)
{
    int count = have(layer, "tg_layer_buffers", "layer") ? layer->n_buffers : 0;
    if (n)
        *n = count;
    return count ? layer->buffers : NULL;
}

const char *tg_layer_buffer_name(const tg_layer *layer, int i)
{
    if (!have(layer, "tg_layer_buffer_name", "layer"))
        return NULL;
    if (i < 0 || i >= layer->n_buffers)
        return tg__fail_null(TG_ERANGE, "tg_layer_buffer_name: index %d outside 0..%d", i,
                             layer->n_buffers - 1);
    return layer->buffer_names[i];
}

int64_t tg_layer_buffer_count(const tg_layer *layer)
{
    if (!have(layer, "tg_layer_buffer_count", "layer"))
        return 0;
    return numel_sum(layer->buffers, layer->n_buffers);
}

/* ---- the model ---- */

tg_model *tg_model_new(tg_dtype dtype, int ndim, const int64_t *input_shape,
                       tg_init_scheme scheme, uint64_t seed)
{
    static const char fn[] = "tg_model_new";
    if (!tg_dtype_size(dtype))
        return tg__fail_null(TG_EINVAL, "%s: invalid dtype %d", fn, (int)dtype);
    if (ndim < 1 || ndim >= TG_MAX_DIMS)
        return tg__fail_null(TG_EINVAL, "%s: input ndim %d outside 1..%d (per sample, no batch "
                                        "dim)", fn, ndim, TG_MAX_DIMS - 1);
    if (!input_shape)
        return tg__fail_null(TG_EINVAL, "%s: input_shape is NULL", fn);
    for (int i = 0; i < ndim; i++)
        if (input_shape[i] < 1)
            return tg__fail_null(TG_EINVAL, "%s: input dimension %d is %lld (need >= 1)", fn, i,
                                 (long long)input_shape[i]);
    if (scheme != TG_SCHEME_KERAS && scheme != TG_SCHEME_PYTORCH)
        return tg__fail_null(TG_EINVAL, "%s: unknown init scheme %d", fn, (int)scheme);
    tg_model *m = tg__calloc(1, sizeof *m);
    if (!m)
        return tg__fail_null(TG_ENOMEM, "%s: out of memory", fn);
    m->dtype = dtype;
    m->scheme = scheme;
    m->rng = tg_rng_seeded(seed);
    m->training = true;
    m->in_ndim = ndim;
    memcpy(m->in_shape, input_shape, (size_t)ndim * sizeof *input_shape);
    return m;
}

tg_model *tg_model_new_functional(tg_dtype dtype, tg_init_scheme scheme, uint64_t seed)
{
    static const char fn[] = "tg_model_new_functional";
    if (!tg_dtype_size(dtype))
        return tg__fail_null(TG_EINVAL, "%s: invalid dtype %d", fn, (int)dtype);
    if (scheme != TG_SCHEME_KERAS && scheme != TG_SCHEME_PYTORCH)
        return tg__fail_null(TG_EINVAL, "%s: unknown init scheme %d", fn, (int)scheme);
    tg_model *m = tg__calloc(1, sizeof *m);
    if (!m)
        return tg__fail_null(TG_ENOMEM, "%s: out of memory", fn);
    m->dtype = dtype;
    m->scheme = scheme;
    m->rng = tg_rng_seeded(seed);
    m->training = true;
    m->functional = true;
    return m;
}

void tg_model_free(tg_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++)
        layer_destroy(m->layers[i]);
    tg__relay_free(&m->relay);
    tg__free(m->layers);
    tg__free(m->params);
    tg__free(m->buffers);
    tg__free(m);
}

/* The model's current output shape (its input while it has no layers). */
static void current_shape(const tg_model *m, int *ndim, const int64_t **shape)
{
    if (m->functional) {
        *ndim = 0;
        *shape = NULL;
    } else if (m->n_layers) {
        const tg_layer *last = m->layers[m->n_layers - 1];
        *ndim = last->out_ndim;
        *shape = last->out_shape;
    } else {
        *ndim = m->in_ndim;
        *shape = m->in_shape;
    }
}

/* Keras names: the first layer of a kind gets the base name, later ones
 * base_1, base_2, ... */
static void auto_name(const tg_model *m, tg_layer *layer)
{
    int same = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i]->vt == layer->vt)
            same++;
    if (same)
        snprintf(layer->name, sizeof layer->name, "%s_%d", layer->vt->base, same);
    else
        snprintf(layer->name, sizeof layer->name, "%s", layer->vt->base);
}

static bool grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int cap2 = *cap ? *cap * 2 : 8;
    while (cap2 < need)
        cap2 *= 2;
    void *p = tg__realloc(*arr, (size_t)cap2 * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = cap2;
    return true;
}

/* Room for one more layer's parameters and buffers. */
static bool reserve(tg_model *m)
{
    return grow((void **)&m->params, &m->cap_params, m->n_params + TG__LAYER_MAX_PARAMS,
                sizeof *m->params) &&
           grow((void **)&m->buffers, &m->cap_buffers, m->n_buffers + TG__LAYER_MAX_BUFFERS,
                sizeof *m->buffers);
}

/* Builds layer for a per-sample input shape and lists its parameters and
 * buffers in the model (room reserved). On failure the layer has none. */
static tg_status build_layer(tg_model *m, tg_layer *layer, const char *where, int in_ndim,
                             const int64_t *in_shape)
{
    tg__build_ctx ctx = {m->dtype, m->scheme, &m->rng, where};
    tg_status st = layer->vt->build(layer, &ctx, in_ndim, in_shape);
    if (st != TG_OK) {
        tg__layer_drop_params(layer);
        return st;
    }
    // The whole model's count must stay representable for tg_model_param_count.
    int64_t total = tg_model_param_count(m), extra = tg_layer_param_count(layer);
    int64_t btotal = tg_model_buffer_count(m), bextra = tg_layer_buffer_count(layer);
    if (extra > INT64_MAX - total || bextra > INT64_MAX - btotal ||
        extra + bextra > INT64_MAX - total - btotal) {
        tg__layer_drop_params(layer);
        return tg__fail(TG_ERANGE, "%s: parameter count overflows", where);
    }
    layer->in_ndim = in_ndim;
    memcpy(layer->in_shape, in_shape, (size_t)in_ndim * sizeof *in_shape);
    layer->built = true;
    for (int i = 0; i < layer->n_params; i++)
        m->params[m->n_params++] = layer->params[i];
    for (int i = 0; i < layer->n_buffers; i++)
        m->buffers[m->n_buffers++] = layer->buffers[i];
    return TG_OK;
}

/* A constructor that failed has already said why: keep its reason (copied:
 * the message buffer is about to be rewritten). */
static tg_status null_layer(const char *fn, int index)
{
    char which[24] = "";
    if (index >= 0)
        snprintf(which, sizeof which, " %d", index);
    if (tg_last_status() != TG_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", tg_last_error());
        return tg__fail(tg_last_status(), "%s: layer%s is NULL: %s", fn, which, why);
    }
    return tg__fail(TG_EINVAL, "%s: layer%s is NULL", fn, which);
}

tg_status tg_model_add(tg_model *m, tg_layer *layer)
{
    static const char fn[] = "tg_model_add";
    if (layer && layer->owned)
        return tg__fail(TG_ESTATE, "%s: layer '%s' already belongs to a model", fn, layer->name);
    if (!m) {
        tg_layer_free(layer);
        return tg__fail(TG_EINVAL, "%s: model is NULL", fn);
    }
    if (!layer)
        return null_layer(fn, m->n_layers);
    if (m->functional) {
        tg_layer_free(layer);
        return tg__fail(TG_ESTATE, "%s: the model is functional: register layers with "
                                   "tg_model_register and call them with tg_layer_call", fn);
    }
    if (!grow((void **)&m->layers, &m->cap_layers, m->n_layers + 1, sizeof *m->layers) ||
        !reserve(m)) {
        tg_layer_free(layer);
        return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    }
    auto_name(m, layer);
    char where[192];
    snprintf(where, sizeof where, "%s: layer %d (%s, %s)", fn, m->n_layers, layer->name,
             layer->vt->type);
    int in_ndim;
    const int64_t *in_shape;
    current_shape(m, &in_ndim, &in_shape);
    tg_status st = build_layer(m, layer, where, in_ndim, in_shape);
    if (st != TG_OK) {
        tg_layer_free(layer);
        return st;
    }
    layer->owned = true;
    layer->model = m;
    m->layers[m->n_layers++] = layer;
    return TG_OK;
}

/* ---- the functional model ---- */

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

static bool name_taken(const tg_model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0)
            return true;
    return false;
}

tg_layer *tg_model_register(tg_model *m, const char *name, tg_layer *layer)
{
    static const char fn[] = "tg_model_register";
    if (layer && layer->owned)
        return tg__fail_null(TG_ESTATE, "%s: layer '%s' already belongs to a model", fn,
                             layer->name);
    if (!m) {
        tg_layer_free(layer);
        return tg__fail_null(TG_EINVAL, "%s: model is NULL", fn);
    }
    if (!layer) {
        null_layer(fn, m->n_layers);
        return NULL;
    }
    tg_status st = TG_OK;
    if (!m->functional)
        st = tg__fail(TG_ESTATE, "%s: the model is Sequential: add layers with tg_model_add "
                                 "(make a functional one with tg_model_new_functional)", fn);
    if (st == TG_OK && name) {
        size_t len = strlen(name);
        bool ok = len > 0 && len < TG__LAYER_NAME;
        for (size_t i = 0; ok && i < len; i++)
            ok = name_char_ok(name[i]);
        if (!ok)
            st = tg__fail(TG_EINVAL, "%s: layer name \"%.80s\" must be 1..%d characters of "
                                     "A-Z a-z 0-9 _ . -", fn, name, TG__LAYER_NAME - 1);
        else if (name_taken(m, name))
            st = tg__fail(TG_EINVAL, "%s: the model already has a layer named \"%s\"", fn,
                          name);
    }
    if (st == TG_OK &&
        !grow((void **)&m->layers, &m->cap_layers, m->n_layers + 1, sizeof *m->layers))
        st = tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    if (st != TG_OK) {
        tg_layer_free(layer);
        return NULL;
    }
    if (name) {
        snprintf(layer->name, sizeof layer->name, "%s", name);
    } else {
        // Keras's names, skipping any the caller has taken.
        auto_name(m, layer);
        for (int k = 1; name_taken(m, layer->name); k++)
            snprintf(layer->name, sizeof layer->name, "%s_%d", layer->vt->base, k);
    }
    layer->owned = true;
    layer->model = m;
    m->layers[m->n_layers++] = layer;
    return layer;
}

/* Checks and builds layer for tg_layer_call with a per-sample input shape. */
static tg_status prepare_call(tg_model *m, tg_layer *layer, int in_ndim, const int64_t *in_shape,
                              char *where, size_t where_size)
{
    static const char fn[] = "tg_layer_call";
    if (!m)
        return tg__fail(TG_EINVAL, "%s: model is NULL", fn);
    if (!layer)
        return null_layer(fn, -1);
    if (layer->model != m)
        return tg__fail(TG_ESTATE, "%s: layer '%s' (%s) does not belong to this model "
                                   "(register it with tg_model_register)", fn, layer->name,
                        layer->vt->type);
    snprintf(where, where_size, "%s: layer '%s' (%s)", fn, layer->name, layer->vt->type);
    if (!tg_tape_current())
        return tg__fail(TG_ESTATE, "%s: no current tape (create one with tg_tape_new)", fn);
    if (!layer->built) {
        if (!reserve(m))
            return tg__fail(TG_ENOMEM, "%s: out of memory", where);
        return build_layer(m, layer, where, in_ndim, in_shape);
    }
    if (layer->vt->accepts)
        return layer->vt->accepts(layer, in_ndim, in_shape, where);
    bool same = in_ndim == layer->in_ndim;
    for (int i = 0; same && i < in_ndim; i++)
        same = in_shape[i] == layer->in_shape[i];
    if (!same) {
        char a[TG__SHAPE_STR], b[TG__SHAPE_STR];
        return tg__fail(TG_ESHAPE, "%s: input %s, but the layer was built for %s", where,
                        tg__batch_shape_str(a, in_ndim, in_shape),
                        tg__batch_shape_str(b, layer->in_ndim, layer->in_shape));
    }
    return TG_OK;
}

tg_tensor *tg_layer_call(tg_model *m, tg_layer *layer, tg_tensor *x)
{
    static const char fn[] = "tg_layer_call";
    if (tg__bad_input(fn, x, 0))
        return NULL;
    if (x->ndim < 1)
        return tg__fail_null(TG_ESHAPE, "%s: x is 0-dim (need a batch dimension first)", fn);
    if (m && x->dtype != m->dtype)
        return tg__fail_null(TG_EDTYPE, "%s: input is %s, the model is %s", fn,
                             tg_dtype_name(x->dtype), tg_dtype_name(m->dtype));
    char where[192];
    if (prepare_call(m, layer, x->ndim - 1, x->shape + 1, where, sizeof where) != TG_OK)
        return NULL;
    tg__forward_ctx ctx = {m->training, false, &m->rng, fn};
    return layer->vt->forward(layer, x, &ctx);
}

tg_tensor *tg_layer_call_ids(tg_model *m, tg_layer *layer, int ndim, const int64_t *shape,
                             const int64_t *ids)
{
    static const char fn[] = "tg_layer_call_ids";
    if (ndim < 1 || ndim >= TG_MAX_DIMS)
        return tg__fail_null(TG_EINVAL, "%s: ndim %d outside 1..%d", fn, ndim, TG_MAX_DIMS - 1);
    if (!shape || !ids)
        return tg__fail_null(TG_EINVAL, "%s: %s is NULL", fn, !shape ? "shape" : "ids");
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1)
            return tg__fail_null(TG_EINVAL, "%s: dimension %d is %lld (need >= 1)", fn, i,
                                 (long long)shape[i]);
    if (layer && !layer->vt->forward_ids)
        return tg__fail_null(TG_EINVAL, "%s: layer '%s' (%s) takes tensors, not ids (use "
                                        "tg_layer_call)", fn, layer->name, layer->vt->type);
    char where[192];
    if (prepare_call(m, layer, ndim - 1, shape + 1, where, sizeof where) != TG_OK)
        return NULL;
    tg__forward_ctx ctx = {m->training, false, &m->rng, fn};
    return layer->vt->forward_ids(layer, ndim, shape, ids, &ctx);
}

tg_tensor *tg_model_forward(tg_model *m, tg_tensor *x, bool logits)
{
    static const char fn[] = "tg_model_forward";
    if (!m)
        return tg__fail_null(TG_EINVAL, "%s: model is NULL", fn);
    if (tg__bad_input(fn, x, 0))
        return NULL;
    if (m->functional)
        return tg__fail_null(TG_ESTATE, "%s: the model is functional: call its layers with "
                                        "tg_layer_call", fn);
    if (!m->n_layers)
        return tg__fail_null(TG_ESTATE, "%s: the model has no layers", fn);
    if (x->dtype != m->dtype)
        return tg__fail_null(TG_EDTYPE, "%s: input is %s, the model is %s", fn,
                             tg_dtype_name(x->dtype), tg_dtype_name(m->dtype));
    bool ok = x->ndim == m->in_ndim + 1;
    for (int i = 0; ok && i < m->in_ndim; i++)
        ok = x->shape[i + 1] == m->in_shape[i];
    if (!ok) {
        char sx[TG__SHAPE_STR], se[TG__SHAPE_STR];
        tg__batch_shape_str(se, m->in_ndim, m->in_shape);
        se[1] = 'N'; // "(None, ..." -> "(N, ..."
        memmove(se + 2, se + 5, strlen(se + 5) + 1);
        return tg__fail_null(TG_ESHAPE, "%s: input %s, expected %s", fn,
                             tg__shape_str(sx, x->ndim, x->shape), se);
    }
    if (!tg_tape_current())
        return tg__fail_null(TG_ESTATE, "%s: no current tape (create one with tg_tape_new)", fn);
    tg__forward_ctx ctx = {m->training, false, &m->rng, fn};
    // No graph: each layer's input can go once it is consumed (relay.c).
    if (!tg_grad_enabled() && m->n_layers > 1 && !atomic_exchange(&m->relay.busy, 1)) {
        tg_tensor *y = tg__relay_forward(&m->relay, m->layers, m->n_layers, x, &ctx, logits);
        atomic_store(&m->relay.busy, 0);
        return y;
    }
    tg_tensor *h = x;
    for (int i = 0, span; i < m->n_layers && h; i += span) {
        span = tg__layer_span(m->layers, m->n_layers, i);
        ctx.skip_final_act = logits && i + span == m->n_layers;
        h = tg__layer_run(m->layers, i, span, h, &ctx);
    }
    return h;
}

int tg__layer_span(tg_layer *const *layers, int n, int i)
{
    const tg_layer *l = layers[i];
    return i + 1 < n && l->vt->pairs_with && l->vt->pairs_with(l, layers[i + 1]) ? 2 : 1;
}

tg_tensor *tg__layer_run(tg_layer *const *layers, int i, int span, tg_tensor *x,
                         const tg__forward_ctx *ctx)
{
    tg_layer *l = layers[i];
    return span == 2 ? l->vt->forward_pair(l, layers[i + 1], x, ctx) : l->vt->forward(l, x, ctx);
}

void tg_model_set_training(tg_model *m, bool training)
{
    if (have(m, "tg_model_set_training", "model"))
        m->training = training;
}

bool tg_model_training(const tg_model *m)
{
    return have(m, "tg_model_training", "model") && m->training;
}

tg_rng *tg_model_rng(tg_model *m) { return m ? &m->rng : NULL; }

tg_tensor *const *tg_model_params(const tg_model *m, int *n)
{
    int count = have(m, "tg_model_params", "model") ? m->n_params : 0;
    if (n)
        *n = count;
    return count ? m->params : NULL;
}

int64_t tg_model_param_count(const tg_model *m)
{
    if (!have(m, "tg_model_param_count", "model"))
        return 0;
    return numel_sum(m->params, m->n_params);
}

tg_tensor *const *tg_model_buffers(const tg_model *m, int *n)
{
    int count = have(m, "tg_model_buffers", "model") ? m->n_buffers : 0;
    if (n)
        *n = count;
    return count ? m->buffers : NULL;
}

int64_t tg_model_buffer_count(const tg_model *m)
{
    if (!have(m, "tg_model_buffer_count", "model"))
        return 0;
    return numel_sum(m->buffers, m->n_buffers);
}

bool tg_model_functional(const tg_model *m)
{
    return have(m, "tg_model_functional", "model") && m->functional;
}

int tg_model_layer_count(const tg_model *m)
{
    return have(m, "tg_model_layer_count", "model") ? m->n_layers : 0;
}

tg_layer *tg_model_layer(const tg_model *m, int i)
{
    if (!have(m, "tg_model_layer", "model"))
        return NULL;
    if (i < 0 || i >= m->n_layers)
        return tg__fail_null(TG_ERANGE, "tg_model_layer: index %d outside 0..%d", i,
                             m->n_layers - 1);
    return m->layers[i];
}

const int64_t *tg_model_input_shape(const tg_model *m, int *ndim)
{
    bool ok = have(m, "tg_model_input_shape", "model") && !m->functional;
    if (ndim)
        *ndim = ok ? m->in_ndim : 0;
    return ok ? m->in_shape : NULL;
}

const int64_t *tg_model_output_shape(const tg_model *m, int *ndim)
{
    if (!have(m, "tg_model_output_shape", "model")) {
        if (ndim)
            *ndim = 0;
        return NULL;
    }
    int nd;
    const int64_t *shape;
    current_shape(m, &nd, &shape);
    if (ndim)
        *ndim = nd;
    return shape;
}

tg_dtype tg_model_dtype(const tg_model *m)
{
    return have(m, "tg_model_dtype", "model") ? m->dtype : TG_F32;
}

/* ---- summary ---- */

/* 121930 -> "121,930". */
static const char *with_commas(char *buf, size_t size, int64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRId64, v);
    size_t used = 0;
    for (int i = 0; i < n && used + 1 < size; i++) {
        if (i > 0 && digits[i - 1] != '-' && (n - i) % 3 == 0)
            buf[used++] = ',';
        buf[used++] = digits[i];
    }
    buf[used] = '\0';
    return buf;
}

static void rule(FILE *out, char c, int width)
{
    for (int i = 0; i < width; i++)
        fputc(c, out);
    fputc('\n', out);
}

/* One row: each field left-aligned in its column, without trailing spaces. */
static void row(FILE *out, const char *a, int wa, const char *b, int wb, const char *c)
{
    if (*c)
        fprintf(out, "%-*s%-*s%s\n", wa, a, wb, b, c);
    else if (*b)
        fprintf(out, "%-*s%s\n", wa, a, b);
    else
        fprintf(out, "%s\n", a);
}

/* A layer's row: its output shape ("(unbuilt)" before a functional model's
 * layer is first called) and its count, parameters and buffers together as
 * in Keras (a BatchNormalization row counts its moving mean and variance). */
static const char *layer_shape(char *buf, const tg_layer *l)
{
    if (!l->built)
        return strcpy(buf, "(unbuilt)");
    return tg__batch_shape_str(buf, l->out_ndim, l->out_shape);
}

static int64_t layer_count(const tg_layer *l)
{
    return tg_layer_param_count(l) + tg_layer_buffer_count(l);
}

tg_status tg_model_summary(const tg_model *m, FILE *out)
{
    static const char fn[] = "tg_model_summary";
    if (!m || !out)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !m ? "model" : "stream");
    // Keras 2's Sequential layout: columns of 29, 26 and 10 characters (65 in
    // all), widened here when a name or shape would not fit (Keras cuts it);
    // per-layer counts plain, totals with thousands separators.
    int w1 = 29, w2 = 26, w3 = 10;
    char label[TG__LAYER_NAME + 32], shape[TG__SHAPE_STR], count[32];
    for (int i = 0; i < m->n_layers; i++) {
        const tg_layer *l = m->layers[i];
        int n1 = snprintf(label, sizeof label, "%s (%s)", l->name, l->vt->type) + 1;
        int n2 = (int)strlen(layer_shape(shape, l)) + 1;
        int n3 = snprintf(count, sizeof count, "%" PRId64, layer_count(l)) + 1;
        w1 = n1 > w1 ? n1 : w1;
        w2 = n2 > w2 ? n2 : w2;
        w3 = n3 > w3 ? n3 : w3;
    }
    int width = w1 + w2 + w3;
    fprintf(out, "Model: \"%s\"\n", m->functional ? "model" : "sequential");
    rule(out, '_', width);
    row(out, "Layer (type)", w1, "Output Shape", w2, "Param #");
    rule(out, '=', width);
    for (int i = 0; i < m->n_layers; i++) {
        const tg_layer *l = m->layers[i];
        snprintf(label, sizeof label, "%s (%s)", l->name, l->vt->type);
        layer_shape(shape, l);
        snprintf(count, sizeof count, "%" PRId64, layer_count(l));
        row(out, label, w1, shape, w2, count);
        if (i + 1 < m->n_layers)
            rule(out, '_', width);
    }
    rule(out, '=', width);
    char total[32], trainable[32], fixed[32];
    int64_t np = tg_model_param_count(m), nb = tg_model_buffer_count(m);
    with_commas(total, sizeof total, np + nb);
    with_commas(trainable, sizeof trainable, np);
    with_commas(fixed, sizeof fixed, nb);
    fprintf(out, "Total params: %s\n", total);
    fprintf(out, "Trainable params: %s\n", trainable);
    fprintf(out, "Non-trainable params: %s\n", fixed);
    rule(out, '_', width);
    if (fflush(out) != 0 || ferror(out))
        return tg__fail(TG_EIO, "%s: writing the summary failed", fn);
    return TG_OK;
}
