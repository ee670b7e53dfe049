/* model.c - the Sequential model: adding layers (shape inference, automatic
 * names, parameter creation), the forward pass, parameter lists and the
 * Keras-style summary. Also the helpers every layer file shares. The layers
 * themselves live in dense.c, conv2d.c, pool.c and simple.c. */
#include <inttypes.h>
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
    int64_t total = 0;
    have(layer, "tg_layer_param_count", "layer");
    for (int i = 0; layer && i < layer->n_params; i++)
        total += layer->params[i]->numel;
    return total;
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

void tg_model_free(tg_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++)
        layer_destroy(m->layers[i]);
    tg__free(m->layers);
    tg__free(m->params);
    tg__free(m);
}

/* The model's current output shape (its input while it has no layers). */
static void current_shape(const tg_model *m, int *ndim, const int64_t **shape)
{
    if (m->n_layers) {
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

tg_status tg_model_add(tg_model *m, tg_layer *layer)
{
    static const char fn[] = "tg_model_add";
    if (layer && layer->owned)
        return tg__fail(TG_ESTATE, "%s: layer '%s' already belongs to a model", fn, layer->name);
    if (!m) {
        tg_layer_free(layer);
        return tg__fail(TG_EINVAL, "%s: model is NULL", fn);
    }
    if (!layer) {
        // A constructor that failed has already said why; keep its reason
        // (copied: the message buffer is about to be rewritten).
        if (tg_last_status() != TG_OK) {
            char why[256];
            snprintf(why, sizeof why, "%s", tg_last_error());
            return tg__fail(tg_last_status(), "%s: layer %d is NULL: %s", fn, m->n_layers, why);
        }
        return tg__fail(TG_EINVAL, "%s: layer %d is NULL", fn, m->n_layers);
    }
    if (!grow((void **)&m->layers, &m->cap_layers, m->n_layers + 1, sizeof *m->layers) ||
        !grow((void **)&m->params, &m->cap_params, m->n_params + TG__LAYER_MAX_PARAMS,
              sizeof *m->params)) {
        tg_layer_free(layer);
        return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    }
    auto_name(m, layer);
    char where[160];
    snprintf(where, sizeof where, "%s: layer %d (%s, %s)", fn, m->n_layers, layer->name,
             layer->vt->type);
    int in_ndim;
    const int64_t *in_shape;
    current_shape(m, &in_ndim, &in_shape);
    tg__build_ctx ctx = {m->dtype, m->scheme, &m->rng, where};
    tg_status st = layer->vt->build(layer, &ctx, in_ndim, in_shape);
    if (st != TG_OK) {
        tg__layer_drop_params(layer);
        tg_layer_free(layer);
        return st;
    }
    // The whole model's count must stay representable for tg_model_param_count.
    int64_t total = tg_model_param_count(m), extra = tg_layer_param_count(layer);
    if (extra > INT64_MAX - total) {
        tg_layer_free(layer);
        return tg__fail(TG_ERANGE, "%s: parameter count overflows", where);
    }
    layer->built = true;
    layer->owned = true;
    m->layers[m->n_layers++] = layer;
    for (int i = 0; i < layer->n_params; i++)
        m->params[m->n_params++] = layer->params[i];
    return TG_OK;
}

tg_tensor *tg_model_forward(tg_model *m, tg_tensor *x, bool logits)
{
    static const char fn[] = "tg_model_forward";
    if (!m)
        return tg__fail_null(TG_EINVAL, "%s: model is NULL", fn);
    if (tg__bad_input(fn, x, 0))
        return NULL;
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
    tg__forward_ctx ctx = {m->training, false, &m->rng};
    tg_tensor *h = x;
    for (int i = 0; i < m->n_layers && h; i++) {
        tg_layer *l = m->layers[i];
        ctx.skip_final_act = logits && i == m->n_layers - 1;
        h = l->vt->forward(l, h, &ctx);
    }
    return h;
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
    int64_t total = 0;
    have(m, "tg_model_param_count", "model");
    for (int i = 0; m && i < m->n_params; i++)
        total += m->params[i]->numel;
    return total;
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
    bool ok = have(m, "tg_model_input_shape", "model");
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
        int n2 = (int)strlen(tg__batch_shape_str(shape, l->out_ndim, l->out_shape)) + 1;
        int n3 = snprintf(count, sizeof count, "%" PRId64, tg_layer_param_count(l)) + 1;
        w1 = n1 > w1 ? n1 : w1;
        w2 = n2 > w2 ? n2 : w2;
        w3 = n3 > w3 ? n3 : w3;
    }
    int width = w1 + w2 + w3;
    fprintf(out, "Model: \"sequential\"\n");
    rule(out, '_', width);
    row(out, "Layer (type)", w1, "Output Shape", w2, "Param #");
    rule(out, '=', width);
    for (int i = 0; i < m->n_layers; i++) {
        const tg_layer *l = m->layers[i];
        snprintf(label, sizeof label, "%s (%s)", l->name, l->vt->type);
        tg__batch_shape_str(shape, l->out_ndim, l->out_shape);
        snprintf(count, sizeof count, "%" PRId64, tg_layer_param_count(l));
        row(out, label, w1, shape, w2, count);
        if (i + 1 < m->n_layers)
            rule(out, '_', width);
    }
    rule(out, '=', width);
    char total[32];
    with_commas(total, sizeof total, tg_model_param_count(m));
    fprintf(out, "Total params: %s\n", total);
    fprintf(out, "Trainable params: %s\n", total);
    fprintf(out, "Non-trainable params: 0\n");
    rule(out, '_', width);
    if (fflush(out) != 0 || ferror(out))
        return tg__fail(TG_EIO, "%s: writing the summary failed", fn);
    return TG_OK;
}
