/* checkpoint.c - what the tensors of a safetensors file mean: a model's
 * parameters under state_dict-like names (tg_model_save / tg_model_load) and
 * full training checkpoints (tg_checkpoint_save / _load). Both describe the
 * live objects as one list of (name, tensor) pairs; saving writes the list,
 * loading compares the file against it, then copies. Reading and writing
 * the format is safetensors.c's. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tapegrad/checkpoint.h"
#include "tg_internal.h"

/* ---- the list of named tensors ---- */

typedef struct plist {
    int n, cap;
    char **names;
    tg_tensor **ts;
    bool *owned; /* a temporary 0-dim tensor made for a scalar */
} plist;

static void plist_free(plist *l)
{
    for (int i = 0; i < l->n; i++) {
        tg__free(l->names[i]);
        if (l->owned[i])
            tg_tensor_free(l->ts[i]);
    }
    tg__free(l->names);
    tg__free(l->ts);
    tg__free(l->owned);
    memset(l, 0, sizeof *l);
}

static tg_status plist_add(plist *l, const char *fn, tg_tensor *t, bool owned,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static tg_status plist_add(plist *l, const char *fn, tg_tensor *t, bool owned,
                           const char *fmt, ...)
{
    if (!t)
        return tg_last_status() != TG_OK ? tg_last_status()
                                         : tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **nn = tg__realloc(l->names, (size_t)cap * sizeof *nn);
        if (nn)
            l->names = nn;
        tg_tensor **nt = nn ? tg__realloc(l->ts, (size_t)cap * sizeof *nt) : NULL;
        if (nt)
            l->ts = nt;
        bool *no = nt ? tg__realloc(l->owned, (size_t)cap * sizeof *no) : NULL;
        if (!no) {
            if (owned)
                tg_tensor_free(t);
            return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
        }
        l->owned = no;
        l->cap = cap;
    }
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    size_t len = strlen(name) + 1;
    char *copy = tg__malloc(len);
    if (!copy) {
        if (owned)
            tg_tensor_free(t);
        return tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    }
    memcpy(copy, name, len);
    l->names[l->n] = copy;
    l->ts[l->n] = t;
    l->owned[l->n] = owned;
    l->n++;
    return TG_OK;
}

/* A 0-dim float64 holding v, owned by the list. */
static tg_status plist_scalar(plist *l, const char *fn, double v, const char *name)
{
    return plist_add(l, fn, tg_tensor_from_doubles(TG_F64, 0, NULL, &v), true, "%s", name);
}

/* A layer's tensors under PyTorch-like state_dict names: its parameters
 * ("weight", "bias", ...) and then its buffers ("running_mean", ...). */
static tg_status add_model(plist *l, const char *fn, const tg_model *m, const char *prefix)
{
    for (int i = 0; i < tg_model_layer_count(m); i++) {
        const tg_layer *layer = tg_model_layer(m, i);
        int np = 0, nb = 0;
        tg_tensor *const *ps = tg_layer_params(layer, &np);
        for (int k = 0; k < np; k++) {
            tg_status st = plist_add(l, fn, ps[k], false, "%s%s.%s", prefix,
                                     tg_layer_name(layer), tg_layer_param_name(layer, k));
            if (st != TG_OK)
                return st;
        }
        tg_tensor *const *bs = tg_layer_buffers(layer, &nb);
        for (int k = 0; k < nb; k++) {
            tg_status st = plist_add(l, fn, bs[k], false, "%s%s.%s", prefix,
                                     tg_layer_name(layer), tg_layer_buffer_name(layer, k));
            if (st != TG_OK)
                return st;
        }
    }
    return TG_OK;
}

/* ---- metadata ---- */

/* key, value pairs with values formatted into owned strings; NULL-ended. */
typedef struct meta {
    int n;
    const char *kv[64];
    char *owned[32];
    int n_owned;
    bool failed;
} meta;

static void meta_free(meta *m)
{
    for (int i = 0; i < m->n_owned; i++)
        tg__free(m->owned[i]);
}

static void meta_put(meta *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void meta_put(meta *m, const char *key, const char *fmt, ...)
{
    if (m->n_owned == 32 || m->n == 31)
        m->failed = true; // more keys than this file ever writes: an internal error
    if (m->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *v = len >= 0 ? tg__malloc((size_t)len + 1) : NULL;
    if (!v) {
        m->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(v, (size_t)len + 1, fmt, ap);
    va_end(ap);
    m->owned[m->n_owned++] = v;
    m->kv[2 * m->n] = key;
    m->kv[2 * m->n + 1] = v;
    m->n++;
    m->kv[2 * m->n] = NULL;
}

/* "conv2d:Conv2D,max_pooling2d:MaxPooling2D,...": lets a reader rebuild the
 * architecture without tapegrad. */
static void meta_layers(meta *md, const tg_model *m)
{
    size_t len = 1;
    for (int i = 0; i < tg_model_layer_count(m); i++) {
        const tg_layer *l = tg_model_layer(m, i);
        len += strlen(tg_layer_name(l)) + strlen(tg_layer_type(l)) + 2;
    }
    char *s = tg__malloc(len);
    if (!s) {
        md->failed = true;
        return;
    }
    size_t at = 0;
    s[0] = '\0';
    for (int i = 0; i < tg_model_layer_count(m); i++) {
        const tg_layer *l = tg_model_layer(m, i);
        at += (size_t)snprintf(s + at, len - at, "%s%s:%s", i ? "," : "", tg_layer_name(l),
                               tg_layer_type(l));
    }
    meta_put(md, "tapegrad.layers", "%s", s);
    tg__free(s);
}

static void meta_rng(meta *m, const char *key, const tg_rng *r)
{
    meta_put(m, key, "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64, r->s[0],
             r->s[1], r->s[2], r->s[3]);
}

/* Strict decimal int64 ("-12"; no spaces, no '+'). */
static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    bool neg = *s == '-';
    const char *p = s + neg;
    if (!*p)
        return false;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool parse_rng(const char *s, tg_rng *out)
{
    if (!s || strlen(s) != 4 * 16 + 3)
        return false;
    tg_rng r;
    for (int w = 0; w < 4; w++) {
        uint64_t v = 0;
        for (int i = 0; i < 16; i++) {
            char c = s[w * 17 + i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return false;
            v = v << 4 | (uint64_t)d;
        }
        if (w < 3 && s[w * 17 + 16] != ',')
            return false;
        r.s[w] = v;
    }
    *out = r;
    return true;
}

/* ---- comparing a file against the live objects ---- */

static bool in_list(const plist *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return true;
    return false;
}

/* Every entry of l must be in f with its dtype and shape, and f must hold
 * nothing else whose name starts with `only` ("" for everything). The first
 * difference is the message; the others are counted. */
static tg_status compare(const char *fn, const char *path, const tg_safetensors *f,
                         const plist *l, const char *here, const char *only)
{
    char first[400] = "";
    tg_status code = TG_OK;
    int diffs = 0;
    for (int i = 0; i < l->n; i++) {
        const tg_tensor *want = l->ts[i];
        tg_tensor *got = NULL;
        for (int k = 0; k < tg_safetensors_count(f) && !got; k++)
            if (strcmp(tg_safetensors_name(f, k), l->names[i]) == 0)
                got = tg_safetensors_tensor(f, k);
        char a[TG__SHAPE_STR], b[TG__SHAPE_STR], msg[400];
        tg_status c = TG_OK;
        if (!got) {
            c = TG_EFORMAT;
            snprintf(msg, sizeof msg, "'%s' is missing from the file", l->names[i]);
        } else if (tg_tensor_dtype(got) != tg_tensor_dtype(want)) {
            c = TG_EDTYPE;
            snprintf(msg, sizeof msg, "'%s' is %s in the file but %s in %s", l->names[i],
                     tg_dtype_name(tg_tensor_dtype(got)), tg_dtype_name(tg_tensor_dtype(want)), here);
        } else if (tg_tensor_ndim(got) != tg_tensor_ndim(want) ||
                   memcmp(tg_tensor_shape(got), tg_tensor_shape(want),
                          (size_t)tg_tensor_ndim(got) * sizeof(int64_t)) != 0) {
            c = TG_ESHAPE;
            snprintf(msg, sizeof msg, "'%s' is %s in the file but %s in %s", l->names[i],
                     tg__shape_str(a, tg_tensor_ndim(got), tg_tensor_shape(got)),
                     tg__shape_str(b, tg_tensor_ndim(want), tg_tensor_shape(want)), here);
        }
        if (c != TG_OK && diffs++ == 0) {
            code = c;
            snprintf(first, sizeof first, "%s", msg);
        }
    }
    for (int k = 0; k < tg_safetensors_count(f); k++) {
        const char *name = tg_safetensors_name(f, k);
        if (strncmp(name, only, strlen(only)) == 0 && !in_list(l, name) && diffs++ == 0) {
            code = TG_EFORMAT;
            snprintf(first, sizeof first, "the file has '%s', which %s does not", name, here);
        }
    }
    if (!diffs)
        return TG_OK;
    if (diffs == 1)
        return tg__fail(code, "%s: %s: %s", fn, path, first);
    return tg__fail(code, "%s: %s: %s (and %d more difference%s)", fn, path, first, diffs - 1,
                    diffs == 2 ? "" : "s");
}

/* Copies the file's values into every non-temporary entry (shapes checked). */
static void copy_in(const tg_safetensors *f, const plist *l)
{
    for (int i = 0; i < l->n; i++) {
        tg_tensor *src = tg_safetensors_find(f, l->names[i]);
        tg_tensor *dst = l->ts[i];
        memcpy(tg_tensor_data(dst), tg_tensor_data(src),
               (size_t)tg_tensor_numel(dst) * tg_dtype_size(tg_tensor_dtype(dst)));
    }
}

static double scalar_of(const tg_safetensors *f, const char *name)
{
    return tg_tensor_item(tg_safetensors_find(f, name));
}

/* ---- model files ---- */

/* tg_safetensors_write, with its message prefixed by the caller's name. */
static tg_status write_as(const char *fn, const char *path, const plist *l, const meta *md)
{
    tg_status st = tg_safetensors_write(path, l->n, (const char *const *)l->names, l->ts, md->kv);
    if (st != TG_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", tg_last_error());
        tg__fail(st, "%s: %s", fn, why);
    }
    return st;
}

tg_status tg_model_save(const tg_model *model, const char *path)
{
    static const char fn[] = "tg_model_save";
    if (!model || !path)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !model ? "model" : "path");
    int np = 0;
    tg_model_params(model, &np);
    if (!np)
        return tg__fail(TG_EINVAL, "%s: the model has no parameters to save", fn);
    plist l = {0};
    meta md = {0};
    tg_status st = add_model(&l, fn, model, "");
    meta_put(&md, "tapegrad.kind", "model");
    meta_put(&md, "tapegrad.dtype", "%s", tg_dtype_name(tg_model_dtype(model)));
    meta_layers(&md, model);
    if (st == TG_OK && md.failed)
        st = tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    if (st == TG_OK)
        st = write_as(fn, path, &l, &md);
    meta_free(&md);
    plist_free(&l);
    return st;
}

/* Reads path and rewrites a reader's error as fn's. */
static tg_safetensors *read_as(const char *fn, const char *path)
{
    tg_safetensors *f = tg_safetensors_read(path);
    if (!f) {
        char why[400];
        snprintf(why, sizeof why, "%s", tg_last_error());
        tg__fail(tg_last_status(), "%s: %s", fn, why);
    }
    return f;
}

tg_status tg_model_load(tg_model *model, const char *path)
{
    static const char fn[] = "tg_model_load";
    if (!model || !path)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn, !model ? "model" : "path");
    tg_safetensors *f = read_as(fn, path);
    if (!f)
        return tg_last_status();
    // A training checkpoint holds a model too, under "model.": take that.
    const char *kind = tg_safetensors_metadata(f, "tapegrad.kind");
    const char *prefix = kind && strcmp(kind, "training") == 0 ? "model." : "";
    plist l = {0};
    tg_status st = add_model(&l, fn, model, prefix);
    if (st == TG_OK)
        st = compare(fn, path, f, &l, "the model", prefix);
    if (st == TG_OK)
        copy_in(f, &l);
    plist_free(&l);
    tg_safetensors_free(f);
    return st;
}

/* ---- training checkpoints ---- */

static const char *const sched_names[] = {"constant", "step", "exponential", "cosine"};

/* The tensors of a training checkpoint for the objects of s. Scalars are
 * temporaries holding the current values (loading overwrites them). */
static tg_status build_train_list(const char *fn, const tg_train_state *s, plist *l)
{
    tg_status st = add_model(l, fn, s->model, "model.");
    tg_optim *o = s->optim;
    if (!o)
        return st;
    for (int i = 0; st == TG_OK && i < tg_optim_num_params(o); i++)
        for (int k = 0; st == TG_OK && tg_optim_state_name(o, k); k++)
            st = plist_add(l, fn, tg_optim_state(o, i, tg_optim_state_name(o, k)), false,
                           "optim.%d.%s", i, tg_optim_state_name(o, k));
    // With a schedule attached this is the schedule's lr, which is also what
    // the fixed lr becomes when it is detached: nothing else is observable.
    if (st == TG_OK)
        st = plist_scalar(l, fn, tg_optim_get_lr(o), "optim.lr");
    for (int k = 0; st == TG_OK && tg_optim_hparam_name(o, k); k++) {
        double v = 0;
        tg_optim_get_hparam(o, tg_optim_hparam_name(o, k), &v);
        char name[96];
        snprintf(name, sizeof name, "optim.hparam.%s", tg_optim_hparam_name(o, k));
        st = plist_scalar(l, fn, v, name);
    }
    tg_schedule sc;
    if (st == TG_OK && tg_optim_get_schedule(o, &sc)) {
        st = plist_scalar(l, fn, sc.base_lr, "optim.schedule.base_lr");
        if (st == TG_OK)
            st = plist_scalar(l, fn, sc.gamma, "optim.schedule.gamma");
        if (st == TG_OK)
            st = plist_scalar(l, fn, sc.eta_min, "optim.schedule.eta_min");
    }
    return st;
}

static void build_train_meta(meta *md, const tg_train_state *s)
{
    meta_put(md, "tapegrad.kind", "training");
    meta_put(md, "tapegrad.dtype", "%s", tg_dtype_name(tg_model_dtype(s->model)));
    meta_layers(md, s->model);
    meta_rng(md, "model.rng", tg_model_rng(s->model));
    meta_put(md, "model.training", "%d", tg_model_training(s->model) ? 1 : 0);
    meta_put(md, "epoch", "%" PRId64, s->epoch);
    if (s->optim) {
        tg_optim *o = s->optim;
        meta_put(md, "optim", "%s", tg_optim_name(o));
        meta_put(md, "optim.num_params", "%d", tg_optim_num_params(o));
        meta_put(md, "optim.step_count", "%" PRId64, tg_optim_step_count(o));
        tg_schedule sc;
        if (tg_optim_get_schedule(o, &sc)) {
            meta_put(md, "optim.schedule", "%s", sched_names[sc.kind]);
            meta_put(md, "optim.schedule.step_size", "%" PRId64, sc.step_size);
            meta_put(md, "optim.schedule.t_max", "%" PRId64, sc.t_max);
            meta_put(md, "optim.schedule.warmup_steps", "%" PRId64, sc.warmup_steps);
        } else {
            meta_put(md, "optim.schedule", "none");
        }
    }
    if (s->batcher) {
        tg_batcher_state b;
        tg_batcher_get_state(s->batcher, &b);
        meta_put(md, "batcher.n", "%" PRId64, b.n);
        meta_put(md, "batcher.batch_size", "%" PRId64, b.batch_size);
        meta_put(md, "batcher.shuffle", "%d", b.shuffle ? 1 : 0);
        meta_put(md, "batcher.pos", "%" PRId64, b.pos);
        meta_rng(md, "batcher.epoch_rng", &b.epoch_rng);
    }
    if (s->rng)
        meta_rng(md, "rng", s->rng);
}

tg_status tg_checkpoint_save(const char *path, const tg_train_state *state)
{
    static const char fn[] = "tg_checkpoint_save";
    if (!path || !state || !state->model)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn,
                        !path ? "path" : !state ? "state" : "state->model");
    plist l = {0};
    meta md = {0};
    tg_status st = build_train_list(fn, state, &l);
    build_train_meta(&md, state);
    if (st == TG_OK && md.failed)
        st = tg__fail(TG_ENOMEM, "%s: out of memory", fn);
    if (st == TG_OK)
        st = write_as(fn, path, &l, &md);
    meta_free(&md);
    plist_free(&l);
    return st;
}

/* Everything a checkpoint's metadata says, parsed and checked. */
typedef struct train_meta {
    tg_rng model_rng, batcher_rng, rng;
    bool training;
    int64_t epoch, step_count;
    bool has_sched;
    tg_schedule sched;
    tg_batcher_state bs;
} train_meta;

static tg_status meta_fail(const char *fn, const char *path, const char *key, const char *v)
{
    if (!v)
        return tg__fail(TG_EFORMAT, "%s: %s: __metadata__ has no \"%s\"", fn, path, key);
    return tg__fail(TG_EFORMAT, "%s: %s: __metadata__ \"%s\" is \"%.60s\", which is not valid",
                    fn, path, key, v);
}

static tg_status get_i64(const char *fn, const char *path, const tg_safetensors *f,
                         const char *key, int64_t lo, int64_t *out)
{
    const char *v = tg_safetensors_metadata(f, key);
    if (!parse_i64(v, out) || *out < lo)
        return meta_fail(fn, path, key, v);
    return TG_OK;
}

static tg_status get_rng(const char *fn, const char *path, const tg_safetensors *f,
                         const char *key, tg_rng *out)
{
    const char *v = tg_safetensors_metadata(f, key);
    return parse_rng(v, out) ? TG_OK : meta_fail(fn, path, key, v);
}

/* An optional part (optimizer, batcher, rng) must be in the file exactly
 * when the caller passes the object for it. */
static tg_status check_part(const char *fn, const char *path, const tg_safetensors *f,
                            const char *key, bool given, const char *what)
{
    bool in_file = tg_safetensors_metadata(f, key) != NULL;
    if (in_file == given)
        return TG_OK;
    if (in_file)
        return tg__fail(TG_EINVAL, "%s: %s: the checkpoint has %s state but state->%s is NULL",
                        fn, path, what, what);
    return tg__fail(TG_EFORMAT, "%s: %s: the checkpoint has no %s state but state->%s was "
                    "given", fn, path, what, what);
}

static tg_status parse_train_meta(const char *fn, const char *path, const tg_safetensors *f,
                                  const tg_train_state *s, train_meta *tm)
{
    const char *kind = tg_safetensors_metadata(f, "tapegrad.kind");
    if (!kind || strcmp(kind, "training") != 0)
        return tg__fail(TG_EFORMAT, "%s: %s: not a training checkpoint (tapegrad.kind is "
                        "\"%s\"%s)", fn, path, kind ? kind : "(none)",
                        kind && strcmp(kind, "model") == 0 ? "; use tg_model_load" : "");
    tg_status st = check_part(fn, path, f, "optim", s->optim != NULL, "optim");
    if (st == TG_OK)
        st = check_part(fn, path, f, "batcher.n", s->batcher != NULL, "batcher");
    if (st == TG_OK)
        st = check_part(fn, path, f, "rng", s->rng != NULL, "rng");
    int64_t training = 0;
    if (st == TG_OK)
        st = get_rng(fn, path, f, "model.rng", &tm->model_rng);
    if (st == TG_OK)
        st = get_i64(fn, path, f, "model.training", 0, &training);
    if (st == TG_OK && training > 1)
        st = meta_fail(fn, path, "model.training", tg_safetensors_metadata(f, "model.training"));
    tm->training = training == 1;
    if (st == TG_OK)
        st = get_i64(fn, path, f, "epoch", INT64_MIN, &tm->epoch);
    if (st == TG_OK && s->rng)
        st = get_rng(fn, path, f, "rng", &tm->rng);
    if (st == TG_OK && s->optim) {
        const char *name = tg_safetensors_metadata(f, "optim");
        int64_t np = 0;
        if (strcmp(name, tg_optim_name(s->optim)) != 0)
            return tg__fail(TG_EFORMAT, "%s: %s: the checkpoint's optimizer is %s, state->optim "
                            "is %s", fn, path, name, tg_optim_name(s->optim));
        st = get_i64(fn, path, f, "optim.num_params", 0, &np);
        if (st == TG_OK && np != tg_optim_num_params(s->optim))
            return tg__fail(TG_EFORMAT, "%s: %s: the checkpoint's optimizer has %lld params, "
                            "state->optim %d", fn, path, (long long)np,
                            tg_optim_num_params(s->optim));
        if (st == TG_OK)
            st = get_i64(fn, path, f, "optim.step_count", 0, &tm->step_count);
        const char *sk = st == TG_OK ? tg_safetensors_metadata(f, "optim.schedule") : NULL;
        if (st == TG_OK && !sk)
            st = meta_fail(fn, path, "optim.schedule", NULL);
        if (st == TG_OK && strcmp(sk, "none") != 0) {
            int kind_i = -1;
            for (int k = 0; k < 4; k++)
                if (strcmp(sk, sched_names[k]) == 0)
                    kind_i = k;
            if (kind_i < 0)
                return meta_fail(fn, path, "optim.schedule", sk);
            tm->has_sched = true;
            tm->sched.kind = (tg_schedule_kind)kind_i;
            st = get_i64(fn, path, f, "optim.schedule.step_size", INT64_MIN,
                         &tm->sched.step_size);
            if (st == TG_OK)
                st = get_i64(fn, path, f, "optim.schedule.t_max", INT64_MIN, &tm->sched.t_max);
            if (st == TG_OK)
                st = get_i64(fn, path, f, "optim.schedule.warmup_steps", INT64_MIN,
                             &tm->sched.warmup_steps);
        }
    }
    if (st == TG_OK && s->batcher) {
        int64_t shuffle = 0;
        st = get_i64(fn, path, f, "batcher.n", 1, &tm->bs.n);
        if (st == TG_OK)
            st = get_i64(fn, path, f, "batcher.batch_size", 1, &tm->bs.batch_size);
        if (st == TG_OK)
            st = get_i64(fn, path, f, "batcher.shuffle", 0, &shuffle);
        if (st == TG_OK && shuffle > 1)
            st = meta_fail(fn, path, "batcher.shuffle",
                           tg_safetensors_metadata(f, "batcher.shuffle"));
        tm->bs.shuffle = shuffle == 1;
        if (st == TG_OK)
            st = get_i64(fn, path, f, "batcher.pos", 0, &tm->bs.pos);
        if (st == TG_OK)
            st = get_rng(fn, path, f, "batcher.epoch_rng", &tm->bs.epoch_rng);
        tg_batcher_state cur;
        tg_batcher_get_state(s->batcher, &cur);
        if (st == TG_OK && (cur.n != tm->bs.n || cur.batch_size != tm->bs.batch_size ||
                            cur.shuffle != tm->bs.shuffle))
            return tg__fail(TG_EFORMAT, "%s: %s: the checkpoint's batcher has n %lld, "
                            "batch_size %lld, shuffle %d; state->batcher has n %lld, "
                            "batch_size %lld, shuffle %d", fn, path, (long long)tm->bs.n,
                            (long long)tm->bs.batch_size, (int)tm->bs.shuffle,
                            (long long)cur.n, (long long)cur.batch_size, (int)cur.shuffle);
        if (st == TG_OK && tm->bs.pos > tm->bs.n)
            st = meta_fail(fn, path, "batcher.pos", tg_safetensors_metadata(f, "batcher.pos"));
    }
    return st;
}

/* Sets the optimizer's hyperparameters from the file; on failure the ones
 * already set are put back, so the optimizer is unchanged. */
static tg_status restore_hparams(const char *fn, const char *path, tg_optim *o,
                                 const tg_safetensors *f)
{
    double old[16];
    int k = 0;
    tg_status st = TG_OK;
    for (; st == TG_OK && k < 16 && tg_optim_hparam_name(o, k); k++) {
        const char *name = tg_optim_hparam_name(o, k);
        char key[96];
        snprintf(key, sizeof key, "optim.hparam.%s", name);
        tg_optim_get_hparam(o, name, &old[k]);
        st = tg_optim_set_hparam(o, name, scalar_of(f, key));
        if (st != TG_OK) {
            char why[300];
            snprintf(why, sizeof why, "%s", tg_last_error());
            st = tg__fail(TG_EFORMAT, "%s: %s: '%s': %s", fn, path, key, why);
        }
    }
    if (st != TG_OK)
        for (int j = 0; j < k - 1; j++)
            tg_optim_set_hparam(o, tg_optim_hparam_name(o, j), old[j]);
    return st;
}

tg_status tg_checkpoint_load(const char *path, tg_train_state *state)
{
    static const char fn[] = "tg_checkpoint_load";
    if (!path || !state || !state->model)
        return tg__fail(TG_EINVAL, "%s: %s is NULL", fn,
                        !path ? "path" : !state ? "state" : "state->model");
    tg_safetensors *f = read_as(fn, path);
    if (!f)
        return tg_last_status();
    plist l = {0};
    train_meta tm = {0};
    tg_status st = parse_train_meta(fn, path, f, state, &tm);
    // The list is built after the metadata check so that a missing schedule
    // in the live optimizer does not hide the real difference.
    if (st == TG_OK)
        st = build_train_list(fn, state, &l);
    tg_optim *o = state->optim;
    tg_schedule live;
    bool live_sched = o && tg_optim_get_schedule(o, &live);
    if (st == TG_OK && o && live_sched != tm.has_sched) {
        // The schedule's three float fields are tensors: compare() would
        // report them as missing or extra; say what it means instead.
        st = tg__fail(TG_EFORMAT, "%s: %s: the checkpoint %s a learning-rate schedule but "
                      "state->optim %s (attach or detach one with tg_optim_set_schedule first)",
                      fn, path, tm.has_sched ? "has" : "has no", live_sched ? "has one" : "not");
    }
    if (st == TG_OK)
        st = compare(fn, path, f, &l, "state", "");
    double lr = 0;
    if (st == TG_OK && o) {
        lr = scalar_of(f, "optim.lr");
        if (!(lr >= 0 && isfinite(lr)))
            st = tg__fail(TG_EFORMAT, "%s: %s: 'optim.lr' is %g, not a valid lr", fn, path, lr);
        if (st == TG_OK && tm.has_sched) {
            tm.sched.base_lr = scalar_of(f, "optim.schedule.base_lr");
            tm.sched.gamma = scalar_of(f, "optim.schedule.gamma");
            tm.sched.eta_min = scalar_of(f, "optim.schedule.eta_min");
            if (isnan(tg_schedule_lr(&tm.sched, 0))) {
                char why[300];
                snprintf(why, sizeof why, "%s", tg_last_error());
                st = tg__fail(TG_EFORMAT, "%s: %s: the saved schedule is invalid: %s", fn, path,
                              why);
            }
        }
        // Last of the checks, because it can only be checked by setting.
        if (st == TG_OK)
            st = restore_hparams(fn, path, o, f);
    }
    if (st == TG_OK) {
        // From here nothing can fail: every value has been checked.
        for (int i = 0; i < l.n; i++)
            if (!l.owned[i]) {
                tg_tensor *src = tg_safetensors_find(f, l.names[i]);
                memcpy(tg_tensor_data(l.ts[i]), tg_tensor_data(src),
                       (size_t)tg_tensor_numel(src) * tg_dtype_size(tg_tensor_dtype(src)));
            }
        *tg_model_rng(state->model) = tm.model_rng;
        tg_model_set_training(state->model, tm.training);
        if (o) {
            tg_optim_set_schedule(o, NULL);
            tg_optim_set_lr(o, lr);
            if (tm.has_sched)
                tg_optim_set_schedule(o, &tm.sched);
            tg_optim_set_step_count(o, tm.step_count);
        }
        if (state->batcher)
            tg_batcher_set_state(state->batcher, &tm.bs);
        if (state->rng)
            *state->rng = tm.rng;
        state->epoch = tm.epoch;
    }
    plist_free(&l);
    tg_safetensors_free(f);
    return st;
}
