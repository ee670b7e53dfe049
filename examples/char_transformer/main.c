/* char_transformer - trains the small GPT of gpt.h to predict the next
 * character of a public-domain text (the Book of Genesis, King James Version,
 * shipped in examples/data/genesis-kjv), with AdamW, a cosine learning-rate
 * schedule after a short warmup and gradient clipping at norm 1. Prints a
 * Keras-style progress line per epoch, the validation loss against the
 * unigram baseline (the loss of always predicting the characters' overall
 * frequencies), and a sample of generated text. --save writes the model as
 * safetensors; --load reads one back and only samples. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tapegrad/tapegrad.h>

#include "../common/args.h"
#include "gpt.h"

typedef struct options {
    gpt_config cfg;
    int64_t epochs, steps, batch, sample;
    double lr, temperature;
    uint64_t seed;
    const char *text, *save, *load, *prompt;
} options;

static const char USAGE[] =
    "usage: char_transformer [--epochs N] [--steps N] [--batch N] [--context N]\n"
    "       [--width N] [--heads N] [--blocks N] [--lr X] [--seed N] [--text FILE]\n"
    "       [--save PATH] [--load PATH] [--sample N] [--prompt TEXT] [--temperature X]\n"
    "Trains a GPT-style character model (defaults: 8 epochs of 200 steps, batch 16,\n"
    "context 64, width 64, 4 heads, 2 blocks, lr 3e-3) on the shipped Genesis text,\n"
    "then prints --sample characters (default 300) generated after --prompt\n"
    "(default \"And God said\") at --temperature (default 0.8). --load PATH skips\n"
    "training and samples from a model saved with --save.\n";

/* ---- command line ------------------------------------------------------------ */

static int parse_options(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (!strcmp(name, "--help")) {
            fputs(USAGE, stdout);
            return 1;
        }
        if (i + 1 >= argc || strncmp(name, "--", 2)) {
            fprintf(stderr, "char_transformer: %s: unknown option or missing value\n%s", name,
                    USAGE);
            return -1;
        }
        const char *v = argv[++i];
        char why[160] = "";
        long long n = 0;
        int rc = 0;
        struct {
            const char *name;
            long long lo, hi;
            int64_t *out;
        } ints[] = {{"--epochs", 0, 100000, &o->epochs},     {"--steps", 1, 10000000, &o->steps},
                    {"--batch", 1, 4096, &o->batch},         {"--sample", 0, 1000000, &o->sample},
                    {"--context", 1, 4096, &o->cfg.context}, {"--width", 1, 4096, &o->cfg.width},
                    {"--heads", 1, 256, &o->cfg.heads},
                    {"--blocks", 1, GPT_MAX_BLOCKS, &o->cfg.blocks}};
        bool known = false;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !known; k++)
            if (!strcmp(name, ints[k].name)) {
                known = true;
                if ((rc = example_parse_int(v, ints[k].lo, ints[k].hi, &n, why, sizeof why)) == 0)
                    *ints[k].out = n;
            }
        if (known)
            ;
        else if (!strcmp(name, "--lr") || !strcmp(name, "--temperature")) {
            char *end;
            double x = strtod(v, &end);
            rc = *v && !*end && isfinite(x) && x > 0 ? 0 : -1;
            snprintf(why, sizeof why, "expected a positive number, got %s", v);
            if (rc == 0)
                *(name[2] == 'l' ? &o->lr : &o->temperature) = x;
        } else if (!strcmp(name, "--seed")) {
            rc = example_parse_int(v, 0, 1LL << 62, &n, why, sizeof why);
            o->seed = (uint64_t)n;
        } else if (!strcmp(name, "--text"))
            o->text = v;
        else if (!strcmp(name, "--save"))
            o->save = v;
        else if (!strcmp(name, "--load"))
            o->load = v;
        else if (!strcmp(name, "--prompt"))
            o->prompt = v;
        else {
            fprintf(stderr, "char_transformer: unknown option %s\n%s", name, USAGE);
            return -1;
        }
        if (rc != 0) {
            fprintf(stderr, "char_transformer: %s: %s\n", name, why);
            return -1;
        }
    }
    if (o->cfg.width % o->cfg.heads) {
        fprintf(stderr, "char_transformer: --width %lld is not a multiple of --heads %lld\n",
                (long long)o->cfg.width, (long long)o->cfg.heads);
        return -1;
    }
    o->cfg.hidden = 4 * o->cfg.width;
    return 0;
}

/* ---- the text ------------------------------------------------------------------ */

typedef struct corpus {
    char vocab[257];   /* the distinct bytes, in byte order */
    int id[256];       /* byte -> index in vocab, -1 when absent */
    int64_t *ids;      /* the text as ids */
    int64_t n, n_train; /* the first n_train ids train, the rest validate */
} corpus;

static void set_vocab(corpus *c, const char *vocab)
{
    snprintf(c->vocab, sizeof c->vocab, "%s", vocab);
    for (int b = 0; b < 256; b++)
        c->id[b] = -1;
    for (int i = 0; c->vocab[i]; i++)
        c->id[(unsigned char)c->vocab[i]] = i;
}

static bool read_corpus(const char *path, corpus *c)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "char_transformer: cannot open %s\n", path);
        return false;
    }
    size_t cap = 1 << 16, len = 0, got;
    unsigned char *text = malloc(cap);
    bool ok = text != NULL;
    while (ok && (got = fread(text + len, 1, cap - len, f)) > 0)
        if ((len += got) == cap) {
            unsigned char *bigger = realloc(text, cap *= 2);
            ok = bigger != NULL;
            text = bigger ? bigger : text;
        }
    ok = ok && !ferror(f);
    fclose(f);
    bool seen[256] = {false};
    for (size_t i = 0; ok && i < len; i++) {
        ok = text[i] != 0; /* a NUL byte cannot go into the vocabulary string */
        seen[text[i]] = true;
    }
    char vocab[257];
    int v = 0;
    for (int b = 1; b < 256; b++)
        if (seen[b])
            vocab[v++] = (char)b;
    vocab[v] = '\0';
    c->ids = ok ? malloc(len * sizeof *c->ids) : NULL;
    if (!c->ids || len < 1000) {
        fprintf(stderr, "char_transformer: %s: %s\n", path,
                !ok ? "unreadable or not text" : "too short (fewer than 1000 bytes)");
        free(text);
        return false;
    }
    set_vocab(c, vocab);
    for (size_t i = 0; i < len; i++)
        c->ids[i] = c->id[text[i]];
    c->n = (int64_t)len;
    c->n_train = c->n - c->n / 10;
    free(text);
    return true;
}

/* Mean -log p(c) of the validation characters under the training text's
 * character frequencies (add-one smoothed): what a model that ignores context
 * at best achieves. */
static double unigram_baseline(const corpus *c)
{
    int64_t v = (int64_t)strlen(c->vocab), counts[256] = {0};
    for (int64_t i = 0; i < c->n_train; i++)
        counts[c->ids[i]]++;
    double total = 0;
    for (int64_t i = c->n_train; i < c->n; i++)
        total -= log((double)(counts[c->ids[i]] + 1) / (double)(c->n_train + v));
    return total / (double)(c->n - c->n_train);
}

/* ---- training ------------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* batch random windows of the training text: ids and the next characters. */
static void draw_batch(const corpus *c, int64_t batch, int64_t len, tg_rng *rng, int64_t *ids,
                       int64_t *targets)
{
    for (int64_t b = 0; b < batch; b++) {
        int64_t start = (int64_t)tg_rng_below(rng, (uint64_t)(c->n_train - len - 1));
        memcpy(ids + b * len, c->ids + start, (size_t)len * sizeof *ids);
        memcpy(targets + b * len, c->ids + start + 1, (size_t)len * sizeof *ids);
    }
}

/* Mean loss over consecutive windows of the validation text (at most 64). */
static double validation_loss(gpt *g, const corpus *c, int64_t len, int64_t *ids,
                              int64_t *targets)
{
    int64_t windows = (c->n - c->n_train - 1) / len;
    if (windows > 64)
        windows = 64;
    bool was = tg_set_grad_enabled(false);
    double total = 0;
    for (int64_t w = 0; w < windows; w++) {
        memcpy(ids, c->ids + c->n_train + w * len, (size_t)len * sizeof *ids);
        memcpy(targets, c->ids + c->n_train + w * len + 1, (size_t)len * sizeof *ids);
        tg_tensor *loss = gpt_loss(g, ids, targets, 1, len);
        total += loss ? tg_tensor_item(loss) : NAN;
        tg_tape_reset(tg_tape_current());
    }
    tg_set_grad_enabled(was);
    return total / (double)windows;
}

/* "120/120 [==============================] - 14s 117ms/step - loss: 2.4312" */
static void progress(int64_t step, int64_t steps, double seconds, double loss, double val)
{
    int filled = (int)(30 * step / steps);
    char bar[31];
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
    bar[30] = '\0';
    printf("\r%lld/%lld [%s] - %.0fs %.0fms/step - loss: %.4f", (long long)step,
           (long long)steps, bar, seconds, 1e3 * seconds / (double)step, loss);
    if (!isnan(val))
        printf(" - val_loss: %.4f\n", val);
    fflush(stdout);
}

static int train(gpt *g, const corpus *c, const options *o)
{
    int64_t len = g->cfg.context, n_tokens = o->batch * len;
    int64_t *ids = malloc((size_t)n_tokens * sizeof *ids);
    int64_t *targets = malloc((size_t)n_tokens * sizeof *targets);
    tg_adam_opts ao = tg_adamw_defaults();
    ao.lr = o->lr;
    tg_optim *opt = ids && targets ? tg_optim_adamw(g->params, g->n_params, &ao) : NULL;
    tg_schedule sched = tg_schedule_cosine(o->lr, o->epochs * o->steps, o->lr / 10);
    sched.warmup_steps = o->steps / 5;
    int rc = opt && tg_optim_set_schedule(opt, &sched) == TG_OK ? 0 : 1;
    tg_rng rng = tg_rng_seeded(o->seed + 1);
    bool live = isatty(STDOUT_FILENO);
    for (int64_t e = 0; rc == 0 && e < o->epochs; e++) {
        printf("Epoch %lld/%lld\n", (long long)e + 1, (long long)o->epochs);
        double t0 = now(), sum = 0;
        for (int64_t s = 0; rc == 0 && s < o->steps; s++) {
            draw_batch(c, o->batch, len, &rng, ids, targets);
            tg_tensor *loss = gpt_loss(g, ids, targets, o->batch, len);
            if (!loss || tg_backward(loss) != TG_OK ||
                tg_clip_grad_norm(g->params, g->n_params, 1.0, NULL) != TG_OK ||
                tg_optim_step(opt) != TG_OK)
                rc = 1;
            else
                sum += tg_tensor_item(loss);
            tg_optim_zero_grad(opt);
            tg_tape_reset(tg_tape_current());
            if (live && rc == 0 && s + 1 < o->steps)
                progress(s + 1, o->steps, now() - t0, sum / (double)(s + 1), NAN);
        }
        if (rc == 0)
            progress(o->steps, o->steps, now() - t0, sum / (double)o->steps,
                     validation_loss(g, c, len, ids, targets));
    }
    if (rc != 0)
        fprintf(stderr, "char_transformer: %s\n", tg_last_error());
    tg_optim_free(opt);
    free(ids);
    free(targets);
    return rc;
}

/* ---- sampling ------------------------------------------------------------------- */

/* Appends n characters to the prompt, each drawn from softmax(logits / T) of
 * the model's prediction after the last `context` characters. */
static int sample(gpt *g, const corpus *c, const options *o)
{
    const char *prompt = o->prompt ? o->prompt : "And God said";
    int64_t len = (int64_t)strlen(prompt), total = len + o->sample, v = g->cfg.vocab;
    int64_t *ids = malloc((size_t)(total > 0 ? total : 1) * sizeof *ids);
    double *p = malloc((size_t)v * sizeof *p);
    int rc = ids && p && len > 0 ? 0 : 1;
    for (int64_t i = 0; rc == 0 && i < len; i++)
        if ((ids[i] = c->id[(unsigned char)prompt[i]]) < 0) {
            fprintf(stderr, "char_transformer: --prompt: '%c' is not in the text\n", prompt[i]);
            rc = 1;
        }
    tg_rng rng = tg_rng_seeded(o->seed + 2);
    bool was = tg_set_grad_enabled(false);
    if (rc == 0)
        printf("%s", prompt);
    for (int64_t i = len; rc == 0 && i < total; i++) {
        int64_t window = i < g->cfg.context ? i : g->cfg.context;
        tg_tensor *logits = gpt_logits(g, ids + i - window, 1, window);
        double max = -INFINITY, sum = 0;
        for (int64_t k = 0; logits && k < v; k++) {
            tg_tensor_get(logits, (int64_t[]){window - 1, k}, &p[k]);
            p[k] /= o->temperature;
            max = p[k] > max ? p[k] : max;
        }
        for (int64_t k = 0; k < v; k++)
            sum += p[k] = exp(p[k] - max);
        double u = tg_rng_uniform(&rng) * sum;
        int64_t pick = 0;
        while (pick < v - 1 && (u -= p[pick]) > 0)
            pick++;
        ids[i] = pick;
        putchar(c->vocab[pick]);
        tg_tape_reset(tg_tape_current());
        rc = logits ? 0 : 1;
    }
    tg_set_grad_enabled(was);
    printf("\n");
    free(ids);
    free(p);
    return rc;
}

int main(int argc, char **argv)
{
    options o = {.cfg = {.context = 64, .width = 64, .heads = 4, .blocks = 2},
                 .epochs = 8, .steps = 200, .batch = 16, .sample = 300, .lr = 3e-3,
                 .temperature = 0.8, .seed = 1};
    int parsed = parse_options(argc, argv, &o);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    char found[8192];
    const char *text = o.text ? o.text
                              : example_find_shipped_file(argv[0], "genesis-kjv", "genesis.txt",
                                                          found, sizeof found);
    if (!text) {
        fprintf(stderr, "char_transformer: the shipped text was not found (tried %s); "
                        "pass --text FILE\n", found);
        return 1;
    }
    corpus c = {0};
    if (!read_corpus(text, &c))
        return 1;
    tg_tape *tape = tg_tape_new();
    gpt *g = NULL;
    int rc = 1;
    if (o.load) {
        char vocab[257];
        g = gpt_load(o.load, vocab, sizeof vocab);
        if (g)
            set_vocab(&c, vocab);
    } else {
        o.cfg.vocab = (int64_t)strlen(c.vocab);
        g = gpt_new(&o.cfg, TG_F32, o.seed);
    }
    if (!tape || !g) {
        fprintf(stderr, "char_transformer: %s\n", tg_last_error());
        goto done;
    }
    printf("text: %s, %lld characters (%lld train, %lld validation), vocabulary %lld\n", text,
           (long long)c.n, (long long)c.n_train, (long long)(c.n - c.n_train),
           (long long)g->cfg.vocab);
    printf("model: %lld blocks, width %lld, %lld heads, context %lld, %lld parameters, "
           "threads %d\n", (long long)g->cfg.blocks, (long long)g->cfg.width,
           (long long)g->cfg.heads, (long long)g->cfg.context, (long long)gpt_param_count(g),
           tg_num_threads());
    double baseline = unigram_baseline(&c);
    if (!o.load && train(g, &c, &o) != 0)
        goto done;
    int64_t *ids = malloc((size_t)g->cfg.context * 2 * sizeof *ids);
    double val = ids ? validation_loss(g, &c, g->cfg.context, ids, ids + g->cfg.context) : NAN;
    free(ids);
    printf("validation loss %.4f nats/char; unigram baseline %.4f nats/char (%s)\n", val,
           baseline, val < baseline ? "below the baseline" : "NOT below the baseline");
    if (o.save && gpt_save(g, o.save, c.vocab) != TG_OK) {
        fprintf(stderr, "char_transformer: %s\n", tg_last_error());
        goto done;
    }
    if (o.save)
        printf("saved %s\n", o.save);
    printf("--- sample (temperature %.2f) ---\n", o.temperature);
    rc = sample(g, &c, &o);
done:
    gpt_free(g);
    tg_tape_free(tape);
    free(c.ids);
    return rc;
}
