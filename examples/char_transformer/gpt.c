/* gpt.c - the character model of gpt.h, one function per piece of the
 * architecture so that each reads like its formula. */
#include "gpt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5

/* ---- parameters ------------------------------------------------------------ */

/* A parameter of ndim dims named name, stored in *slot: N(0, std) draws, or
 * every element `fill` when std is 0. */
static tg_tensor *param(gpt *g, tg_tensor **slot, const char *name, int ndim,
                        const int64_t *shape, double std, double fill, tg_rng *rng)
{
    tg_tensor *t = std > 0 ? tg_tensor_normal(g->dtype, ndim, shape, 0, std, rng)
                           : tg_tensor_full(g->dtype, ndim, shape, fill);
    if (!t)
        return NULL;
    tg_tensor_set_requires_grad(t, true);
    g->params[g->n_params] = *slot = t;
    g->slots[g->n_params] = slot;
    snprintf(g->names[g->n_params], sizeof g->names[0], "%s", name);
    g->n_params++;
    return t;
}

static bool config_valid(const gpt_config *c)
{
    return c->vocab >= 1 && c->context >= 1 && c->width >= 1 && c->heads >= 1 &&
           c->width % c->heads == 0 && c->blocks >= 1 && c->blocks <= GPT_MAX_BLOCKS &&
           c->hidden >= 1;
}

gpt *gpt_new(const gpt_config *cfg, tg_dtype dtype, uint64_t seed)
{
    if (!cfg || !config_valid(cfg)) {
        tg_set_error(TG_EINVAL, "gpt_new: bad configuration (every size >= 1, width a "
                                "multiple of heads, 1..%d blocks)", GPT_MAX_BLOCKS);
        return NULL;
    }
    gpt *g = calloc(1, sizeof *g);
    if (!g) {
        tg_set_error(TG_ENOMEM, "gpt_new: out of memory");
        return NULL;
    }
    g->cfg = *cfg;
    g->dtype = dtype;
    tg_rng rng = tg_rng_seeded(seed);
    const int64_t V = cfg->vocab, T = cfg->context, D = cfg->width, F = cfg->hidden;
    const double w = 0.02, w_res = 0.02 / sqrt(2.0 * (double)cfg->blocks);
    bool ok = param(g, &g->tok, "tok_emb", TG_SHAPE(V, D), w, 0, &rng) &&
              param(g, &g->pos, "pos_emb", TG_SHAPE(T, D), w, 0, &rng);
    for (int64_t l = 0; ok && l < cfg->blocks; l++) {
        gpt_block *b = &g->block[l];
        char n[48]; /* "blocks." + any int64 + the longest suffix: no truncation warning */
#define NAME(s) (snprintf(n, sizeof n, "blocks.%" PRId64 "." s, l), n)
        ok = param(g, &b->ln1_g, NAME("ln1.weight"), TG_SHAPE(D), 0, 1, &rng) &&
             param(g, &b->ln1_b, NAME("ln1.bias"), TG_SHAPE(D), 0, 0, &rng) &&
             param(g, &b->qkv_w, NAME("attn.qkv.weight"), TG_SHAPE(D, 3 * D), w, 0, &rng) &&
             param(g, &b->qkv_b, NAME("attn.qkv.bias"), TG_SHAPE(3 * D), 0, 0, &rng) &&
             param(g, &b->proj_w, NAME("attn.proj.weight"), TG_SHAPE(D, D), w_res, 0, &rng) &&
             param(g, &b->proj_b, NAME("attn.proj.bias"), TG_SHAPE(D), 0, 0, &rng) &&
             param(g, &b->ln2_g, NAME("ln2.weight"), TG_SHAPE(D), 0, 1, &rng) &&
             param(g, &b->ln2_b, NAME("ln2.bias"), TG_SHAPE(D), 0, 0, &rng) &&
             param(g, &b->fc_w, NAME("mlp.fc.weight"), TG_SHAPE(D, F), w, 0, &rng) &&
             param(g, &b->fc_b, NAME("mlp.fc.bias"), TG_SHAPE(F), 0, 0, &rng) &&
             param(g, &b->out_w, NAME("mlp.proj.weight"), TG_SHAPE(F, D), w_res, 0, &rng) &&
             param(g, &b->out_b, NAME("mlp.proj.bias"), TG_SHAPE(D), 0, 0, &rng);
#undef NAME
    }
    ok = ok && param(g, &g->lnf_g, "ln_f.weight", TG_SHAPE(D), 0, 1, &rng) &&
         param(g, &g->lnf_b, "ln_f.bias", TG_SHAPE(D), 0, 0, &rng) &&
         param(g, &g->head_w, "head.weight", TG_SHAPE(D, V), w, 0, &rng) &&
         param(g, &g->head_b, "head.bias", TG_SHAPE(V), 0, 0, &rng);
    if (!ok) {
        gpt_free(g);
        return NULL;
    }
    return g;
}

void gpt_free(gpt *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_params; i++)
        tg_tensor_free(g->params[i]);
    free(g);
}

void gpt_bind(gpt *g, tg_tensor *const *params)
{
    for (int i = 0; i < g->n_params; i++)
        *g->slots[i] = params[i];
}

int64_t gpt_param_count(const gpt *g)
{
    int64_t n = 0;
    for (int i = 0; i < g->n_params; i++)
        n += tg_tensor_numel(g->params[i]);
    return n;
}

/* ---- the forward pass -------------------------------------------------------
 * x is (batch, len, width) throughout; every op records on the current tape. */

/* x @ w + b over the last axis. */
static tg_tensor *linear(tg_tensor *x, tg_tensor *w, tg_tensor *b)
{
    return tg_add(tg_matmul(x, w), b);
}

/* (batch, len, width) -> (batch, heads, len, width / heads). */
static tg_tensor *split_heads(tg_tensor *x, int64_t heads)
{
    const int64_t *s = tg_tensor_shape(x);
    if (!s)
        return NULL;
    tg_tensor *h = tg_reshape(x, TG_SHAPE(s[0], s[1], heads, s[2] / heads));
    return tg_permute(h, (const int[]){0, 2, 1, 3});
}

/* Causal self-attention: every position attends to itself and the positions
 * before it, softmax(q k^T / sqrt(dk)) v per head with the future masked out
 * (one fused op, tg_scaled_dot_product_attention). */
static tg_tensor *attention(gpt *g, const gpt_block *b, tg_tensor *x, int64_t batch,
                            int64_t len)
{
    const int64_t D = g->cfg.width, H = g->cfg.heads;
    tg_tensor *qkv = linear(x, b->qkv_w, b->qkv_b);
    tg_tensor *q = split_heads(tg_slice(qkv, 2, 0, D, 1), H);
    tg_tensor *k = split_heads(tg_slice(qkv, 2, D, 2 * D, 1), H);
    tg_tensor *v = split_heads(tg_slice(qkv, 2, 2 * D, 3 * D, 1), H);
    tg_tensor *heads = tg_scaled_dot_product_attention(q, k, v, true, 0);
    heads = tg_permute(heads, (const int[]){0, 2, 1, 3});
    return linear(tg_reshape(heads, TG_SHAPE(batch, len, D)), b->proj_w, b->proj_b);
}

static tg_tensor *mlp(const gpt_block *b, tg_tensor *x)
{
    return linear(tg_gelu(linear(x, b->fc_w, b->fc_b)), b->out_w, b->out_b);
}

tg_tensor *gpt_logits(gpt *g, const int64_t *ids, int64_t batch, int64_t len)
{
    if (!g || !ids || batch < 1 || len < 1 || len > g->cfg.context) {
        tg_set_error(TG_EINVAL, "gpt_logits: need a model, ids, batch >= 1 and "
                                "1 <= len <= context");
        return NULL;
    }
    const int64_t D = g->cfg.width;
    tg_tensor *tok = tg_index_select(g->tok, 0, batch * len, ids);
    tg_tensor *x = tg_add(tg_reshape(tok, TG_SHAPE(batch, len, D)),
                          tg_slice(g->pos, 0, 0, len, 1));
    for (int64_t l = 0; l < g->cfg.blocks; l++) {
        const gpt_block *b = &g->block[l];
        tg_tensor *h = tg_layer_norm(x, 1, b->ln1_g, b->ln1_b, LN_EPS);
        x = tg_add(x, attention(g, b, h, batch, len));
        h = tg_layer_norm(x, 1, b->ln2_g, b->ln2_b, LN_EPS);
        x = tg_add(x, mlp(b, h));
    }
    x = tg_layer_norm(x, 1, g->lnf_g, g->lnf_b, LN_EPS);
    tg_tensor *logits = linear(x, g->head_w, g->head_b);
    return tg_reshape(logits, TG_SHAPE(batch * len, g->cfg.vocab));
}

tg_tensor *gpt_loss(gpt *g, const int64_t *ids, const int64_t *targets, int64_t batch,
                    int64_t len)
{
    return tg_cross_entropy(gpt_logits(g, ids, batch, len), targets, TG_REDUCE_MEAN);
}

/* ---- checkpoints ------------------------------------------------------------ */

static const char *const CONFIG_KEYS[] = {"vocab", "context", "width", "heads", "blocks",
                                          "hidden"};
#define N_CONFIG 6

tg_status gpt_save(const gpt *g, const char *path, const char *vocab)
{
    const int64_t values[N_CONFIG] = {g->cfg.vocab, g->cfg.context, g->cfg.width,
                                      g->cfg.heads, g->cfg.blocks,  g->cfg.hidden};
    char text[N_CONFIG][24];
    const char *meta[2 * N_CONFIG + 3];
    int m = 0;
    for (int i = 0; i < N_CONFIG; i++) {
        snprintf(text[i], sizeof text[i], "%" PRId64, values[i]);
        meta[m++] = CONFIG_KEYS[i];
        meta[m++] = text[i];
    }
    meta[m++] = "characters";
    meta[m++] = vocab;
    meta[m] = NULL;
    const char *names[GPT_MAX_PARAMS];
    for (int i = 0; i < g->n_params; i++)
        names[i] = g->names[i];
    return tg_safetensors_write(path, g->n_params, names, g->params, meta);
}

gpt *gpt_load(const char *path, char *vocab, size_t vocab_size)
{
    tg_safetensors *f = tg_safetensors_read(path);
    if (!f)
        return NULL;
    gpt_config cfg;
    int64_t *fields[N_CONFIG] = {&cfg.vocab, &cfg.context, &cfg.width,
                                 &cfg.heads, &cfg.blocks,  &cfg.hidden};
    const char *chars = tg_safetensors_metadata(f, "characters");
    for (int i = 0; i < N_CONFIG; i++) {
        const char *v = tg_safetensors_metadata(f, CONFIG_KEYS[i]);
        char *end = NULL;
        *fields[i] = v ? strtoll(v, &end, 10) : -1;
        if (!v || *end) {
            tg_set_error(TG_EFORMAT, "gpt_load: %s: metadata \"%s\" missing or not an integer",
                         path, CONFIG_KEYS[i]);
            tg_safetensors_free(f);
            return NULL;
        }
    }
    if (!chars || (int64_t)strlen(chars) != cfg.vocab || strlen(chars) >= vocab_size) {
        tg_set_error(TG_EFORMAT, "gpt_load: %s: the characters do not match vocab %" PRId64,
                     path, cfg.vocab);
        tg_safetensors_free(f);
        return NULL;
    }
    gpt *g = gpt_new(&cfg, TG_F32, 0);
    for (int i = 0; g && i < g->n_params; i++) {
        tg_tensor *t = tg_safetensors_find(f, g->names[i]);
        if (!t || tg_tensor_copy_values(g->params[i], t) != TG_OK) {
            if (!t)
                tg_set_error(TG_EFORMAT, "gpt_load: %s: no tensor \"%s\"", path, g->names[i]);
            gpt_free(g);
            g = NULL;
        }
    }
    if (g)
        memcpy(vocab, chars, strlen(chars) + 1);
    tg_safetensors_free(f);
    return g;
}
