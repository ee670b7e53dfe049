/* gpt.h - a small GPT-style character model written with tapegrad's ops:
 * token and position embeddings, `blocks` pre-norm transformer blocks
 * (LayerNorm -> causal multi-head self-attention -> residual, LayerNorm ->
 * MLP with GELU -> residual), a final LayerNorm and a linear head over the
 * vocabulary. Every step of the forward pass is an op on the current tape,
 * so tg_backward gives the gradient of every parameter.
 *
 * The examples' test suite gradient-checks gpt_loss in float64 on a tiny
 * configuration and round-trips a model through gpt_save / gpt_load. */
#ifndef EXAMPLES_GPT_H
#define EXAMPLES_GPT_H

#include <stdint.h>

#include <tapegrad/tapegrad.h>

typedef struct gpt_config {
    int64_t vocab;   /* distinct characters */
    int64_t context; /* longest sequence the position table covers */
    int64_t width;   /* model width d */
    int64_t heads;   /* attention heads; width must be a multiple */
    int64_t blocks;  /* transformer blocks */
    int64_t hidden;  /* MLP hidden width, usually 4 * width */
} gpt_config;

#define GPT_MAX_BLOCKS 8
#define GPT_MAX_PARAMS (6 + 12 * GPT_MAX_BLOCKS)

typedef struct gpt_block {
    tg_tensor *ln1_g, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    tg_tensor *ln2_g, *ln2_b, *fc_w, *fc_b, *out_w, *out_b;
} gpt_block;

typedef struct gpt {
    gpt_config cfg;
    tg_dtype dtype;
    tg_tensor *tok, *pos; /* (vocab, width), (context, width) */
    gpt_block block[GPT_MAX_BLOCKS];
    tg_tensor *lnf_g, *lnf_b, *head_w, *head_b;
    /* Every parameter once, in a fixed order, with its checkpoint name and
     * the field above that uses it. The model owns these tensors. */
    int n_params;
    tg_tensor *params[GPT_MAX_PARAMS];
    char names[GPT_MAX_PARAMS][48]; /* "blocks.<any int64>.attn.qkv.weight" fits */
    tg_tensor **slots[GPT_MAX_PARAMS];
} gpt;

/* A model with GPT-2's initialisation: weights N(0, 0.02) (the residual
 * projections 0.02 / sqrt(2 * blocks)), biases 0, LayerNorm gains 1, drawn
 * from a generator seeded with seed. NULL with tg_last_error() set on a bad
 * configuration (TG_EINVAL) or TG_ENOMEM. Free with gpt_free. */
gpt *gpt_new(const gpt_config *cfg, tg_dtype dtype, uint64_t seed);
void gpt_free(gpt *g);
/* Scalar parameters. */
int64_t gpt_param_count(const gpt *g);
/* Makes the forward pass read params[i] wherever it read g->params[i]
 * (params borrowed, same shapes; gpt_bind(g, g->params) goes back). This is
 * how a gradient check runs the model on its own float64 copies. */
void gpt_bind(gpt *g, tg_tensor *const *params);

/* Logits (batch * len, vocab) of the next character at every position of
 * batch sequences of len ids each (row-major, ids[b * len + t] in [0, vocab),
 * 1 <= len <= context), on the current tape. NULL on failure. */
tg_tensor *gpt_logits(gpt *g, const int64_t *ids, int64_t batch, int64_t len);
/* Mean cross-entropy of the next characters targets (same layout as ids). */
tg_tensor *gpt_loss(gpt *g, const int64_t *ids, const int64_t *targets, int64_t batch,
                    int64_t len);

/* A safetensors checkpoint: every parameter under its name ("tok_emb",
 * "blocks.0.attn.qkv.weight", ...) and the configuration and vocabulary as
 * metadata, so that gpt_load needs nothing else. */
tg_status gpt_save(const gpt *g, const char *path, const char *vocab);
/* A model read back from gpt_save's file; *vocab receives the vocabulary
 * (vocab_size bytes with its NUL). NULL with tg_last_error() on failure. */
gpt *gpt_load(const char *path, char *vocab, size_t vocab_size);

#endif
