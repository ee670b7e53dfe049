/* check_examples.c - golden checks of the examples' numbers: the worked 3-2-1
 * backprop example against its closed-form gradients, and a short MLP
 * training run on the embedded digits reaching a stated accuracy. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>

#include "../examples/char_transformer/gpt.h"
#include "../examples/common/args.h"
#include "../examples/worked_backprop/worked.h"
#include "tg_check.h"

#define CLOSE 1e-12

START_TEST(test_worked_gradients_match_closed_forms)
{
    worked_result r;
    ck_assert_int_eq(worked_run(NULL, 0, NULL, &r), 0);
    // delta2 = y_hat - y for a sigmoid output under binary cross-entropy.
    ck_assert_double_eq_tol(r.delta2, r.y_hat - 1.0, CLOSE);
    ck_assert_double_eq_tol(r.db2, r.f_db2, CLOSE);
    for (int j = 0; j < 2; j++) {
        ck_assert_double_eq_tol(r.dW2[j], r.f_dW2[j], CLOSE);
        ck_assert_double_eq_tol(r.db1[j], r.f_db1[j], CLOSE);
        for (int i = 0; i < 3; i++)
            ck_assert_double_eq_tol(r.dW1[i][j], r.f_dW1[i][j], CLOSE);
    }
    // The forward values follow from the printed weights.
    ck_assert_double_eq_tol(r.h[0], 1 / (1 + exp(-r.z1[0])), CLOSE);
    ck_assert_double_eq_tol(r.loss, -log(r.y_hat), CLOSE);
    ck_assert(r.new_loss < r.loss);
}
END_TEST

START_TEST(test_worked_walkthrough_prints_every_step)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    worked_result r;
    ck_assert_int_eq(worked_run(f, 1, NULL, &r), 0);
    long size = ftell(f);
    rewind(f);
    char *text = calloc((size_t)size + 1, 1);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    // docs/worked-backprop.md quotes these lines of the tape's explanation.
    const char *expected[] = {"[0] matmul <- constant 1x3, leaf #0 3x2", "grad out",
                              "grad in[1]", "      contribution 2 of 2 to [5] sigmoid 1x1",
                              "    summed     tensor([-0.0490,  0.0729], dtype=float64)",
                              "    leaf #3    tensor([-0.4908], dtype=float64)",
                              "dL/dW1[2][1]", "delta1[1]", "One gradient-descent step"};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        ck_assert_msg(strstr(text, expected[i]), "missing '%s'", expected[i]);
    free(text);
    fclose(f);
}
END_TEST

/* --dot: the source of docs/worked-backprop.svg. */
START_TEST(test_worked_writes_its_graph)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    worked_result r;
    ck_assert_int_eq(worked_run(NULL, 0, f, &r), 0);
    long size = ftell(f);
    rewind(f);
    char *text = calloc((size_t)size + 1, 1);
    ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    const char *expected[] = {"digraph tape {", "label=\"[0] matmul\\n1x2",
                              "leaf3 -> op4 [label=\"1\"];", "peripheries=2, label=\"[14] reshape"};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        ck_assert_msg(strstr(text, expected[i]), "missing '%s'", expected[i]);
    free(text);
    fclose(f);
}
END_TEST

/* One epoch of the 784-128-10 MLP (SGD, momentum 0.9, batch 32) on the 8,000
 * embedded training digits must reach 85% on the 2,000 test digits (it reaches
 * about 89%; the margin absorbs platform rounding, not a broken model). */
START_TEST(test_mlp_learns_embedded_digits)
{
    tg_dataset *ds = tg_mnist_load(TG_TEST_DATA_DIR, TG_F32);
    ck_assert_msg(ds, "%s", tg_last_error());
    tg_model *m = tg_model_new(TG_F32, TG_SHAPE(1, 28, 28), TG_SCHEME_KERAS, 1);
    ck_assert_int_eq(tg_model_add(m, tg_layer_flatten()), TG_OK);
    ck_assert_int_eq(tg_model_add(m, tg_layer_dense(128, TG_ACT_RELU)), TG_OK);
    ck_assert_int_eq(tg_model_add(m, tg_layer_dense(10, TG_ACT_SOFTMAX)), TG_OK);
    int n;
    tg_tensor *const *params = tg_model_params(m, &n);
    tg_sgd_opts o = tg_sgd_defaults();
    o.momentum = 0.9;
    tg_optim *opt = tg_optim_sgd(params, n, &o);
    tg_batcher *it = tg_batcher_new(tg_dataset_images(ds, TG_SPLIT_TRAIN),
                                    tg_dataset_labels(ds, TG_SPLIT_TRAIN),
                                    tg_dataset_count(ds, TG_SPLIT_TRAIN), 32, true, 1);
    tg_tape *tape = tg_tape_new();
    tg_tensor *x;
    const int64_t *y;
    int64_t count;
    while (tg_batcher_next(it, &x, &y, &count)) {
        tg_tensor *loss = tg_cross_entropy(tg_model_forward(m, x, true), y, TG_REDUCE_MEAN);
        ck_assert_msg(loss && tg_backward(loss) == TG_OK, "%s", tg_last_error());
        ck_assert_int_eq(tg_optim_step(opt), TG_OK);
        tg_optim_zero_grad(opt);
        tg_tape_reset(tape);
    }
    tg_model_set_training(m, false);
    tg_tensor *probs = tg_model_forward(m, tg_dataset_images(ds, TG_SPLIT_TEST), false);
    double acc = tg_accuracy(probs, tg_dataset_labels(ds, TG_SPLIT_TEST),
                             tg_dataset_count(ds, TG_SPLIT_TEST));
    ck_assert_msg(acc >= 0.85, "test accuracy %.4f below 0.85", acc);
    tg_tape_free(tape);
    tg_batcher_free(it);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_dataset_free(ds);
}
END_TEST

/* example_parse_args on argv, with what it printed to stderr in err. */
static int parse(example_args *a, char *err, size_t size, int argc, const char **argv)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(f), 2);
    int rc = example_parse_args(argc, (char **)argv, "test", a);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(f);
    rewind(f);
    size_t got = fread(err, 1, n < (long)size - 1 ? (size_t)n : size - 1, f);
    err[got] = '\0';
    fclose(f);
    return rc;
}

#define PARSE(a, err, ...)                                                                   \
    parse(a, err, sizeof err, (int)(sizeof((const char *[]){"prog", __VA_ARGS__}) /          \
                                    sizeof(const char *)),                                   \
          (const char *[]){"prog", __VA_ARGS__})

START_TEST(test_args_accepts_both_forms)
{
    example_args a = {.epochs = 5, .batch = 32, .lr = 0.01, .seed = 1, .patience = -1,
                      .data = "somewhere"};
    char err[4096];
    ck_assert_int_eq(PARSE(&a, err, "--epochs=3", "--batch", "64", "--lr=0.5", "--seed",
                           "18446744073709551615", "--verbose=2", "--validation-split", "0.1",
                           "--patience=0", "--bench", "--data=/tmp/x"), 0);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(a.epochs, 3);
    ck_assert_int_eq(a.batch, 64);
    ck_assert_double_eq(a.lr, 0.5);
    ck_assert(a.seed == UINT64_MAX);
    ck_assert_int_eq(a.verbose, 2);
    ck_assert_double_eq(a.validation_split, 0.1);
    ck_assert_int_eq(a.patience, 0);
    ck_assert(a.bench);
    ck_assert_str_eq(a.data, "/tmp/x");
}
END_TEST

START_TEST(test_args_extras)
{
    example_args a = {.epochs = 5, .batch = 32, .data = "d", .extras = EXAMPLE_CHECKPOINTS};
    char err[4096];
    ck_assert_int_eq(PARSE(&a, err, "--save", "c.st", "--resume=old.st"), 0);
    ck_assert_str_eq(a.save, "c.st");
    ck_assert_str_eq(a.resume, "old.st");
    ck_assert_int_eq(PARSE(&a, err, "--model", "m"), -1);
    ck_assert_msg(strstr(err, "--model: unknown option"), "%s", err);
    ck_assert_int_eq(PARSE(&a, err, "--save="), -1);
    ck_assert_msg(strstr(err, "prog: --save: expected a path, got ''"), "%s", err);
    a.extras = EXAMPLE_MODEL_FILE;
    ck_assert_int_eq(PARSE(&a, err, "--model=m.st"), 0);
    ck_assert_str_eq(a.model_file, "m.st");
    ck_assert_int_eq(PARSE(&a, err, "--help"), 1);
    // examples/mnist_bn_cnn's two.
    a.extras = EXAMPLE_TRAIN_SAMPLES | EXAMPLE_BN_MOMENTUM;
    a.bn_momentum = 0.9;
    ck_assert_int_eq(PARSE(&a, err, "--train-samples", "2000", "--bn-momentum=0.99",
                           "--test-samples=500"), 0);
    ck_assert_int_eq(a.train_samples, 2000);
    ck_assert_int_eq(a.test_samples, 500);
    ck_assert_double_eq(a.bn_momentum, 0.99);
    ck_assert_int_eq(PARSE(&a, err, "--train-samples=0"), -1);
    ck_assert_msg(strstr(err, "prog: --train-samples: expected a positive integer, got 0"),
                  "%s", err);
    ck_assert_int_eq(PARSE(&a, err, "--bn-momentum", "1.5"), -1);
    ck_assert_msg(strstr(err, "prog: --bn-momentum: expected a number in [0, 1], got 1.5"),
                  "%s", err);
    ck_assert_msg(strstr(err, "--bn-momentum X        BatchNorm's momentum"), "%s", err);
    ck_assert_int_eq(PARSE(&a, err, "--test-samples", "x"), -1);
    ck_assert_msg(strstr(err, "prog: --test-samples: expected a positive integer, got x"),
                  "%s", err);
    ck_assert_int_eq(a.train_samples, 2000);
    ck_assert_int_eq(a.test_samples, 500);
    ck_assert_double_eq(a.bn_momentum, 0.99);
}
END_TEST

/* Each bad value is refused with the reason, nothing else is changed. */
START_TEST(test_args_say_why)
{
    static const struct {
        const char *argv[2];
        const char *message;
    } cases[] = {
        {{"--epochs", "-1"}, "prog: --epochs: expected a positive integer, got -1\n"},
        {{"--epochs", "2.5"}, "prog: --epochs: expected a positive integer, got 2.5\n"},
        {{"--epochs=0", NULL}, "prog: --epochs: expected a positive integer, got 0\n"},
        {{"--epochs", "1e3"}, "prog: --epochs: expected a positive integer, got 1e3\n"},
        {{"--epochs", " 4"}, "prog: --epochs: expected a positive integer, got  4\n"},
        {{"--epochs", "9999999"},
         "prog: --epochs: expected a positive integer up to 1000000, got 9999999\n"},
        {{"--epochs=", NULL}, "prog: --epochs: expected a positive integer, got ''\n"},
        {{"--batch", "99999999999999999999"},
         "prog: --batch: expected a positive integer, got 99999999999999999999\n"},
        {{"--lr", "abc"}, "prog: --lr: expected a non-negative number, got abc\n"},
        {{"--lr=-0.1", NULL}, "prog: --lr: expected a non-negative number, got -0.1\n"},
        {{"--lr", "nan"}, "prog: --lr: expected a non-negative number, got nan\n"},
        {{"--seed", "-3"}, "prog: --seed: expected a non-negative integer, got -3\n"},
        {{"--seed", "1.5"}, "prog: --seed: expected a non-negative integer, got 1.5\n"},
        {{"--seed", "18446744073709551616"},
         "prog: --seed: expected a non-negative integer below 2^64, got 18446744073709551616\n"},
        {{"--verbose", "3"}, "prog: --verbose: expected 0, 1 or 2, got 3\n"},
        {{"--validation-split", "1"},
         "prog: --validation-split: expected a number in [0, 1), got 1\n"},
        {{"--patience", "-2"}, "prog: --patience: expected a non-negative integer, got -2\n"},
        {{"--epochs", NULL}, "prog: --epochs: missing value\n"},
        {{"--frobnicate", "3"}, "prog: --frobnicate: unknown option\n"},
        {{"--bench=1", NULL}, "prog: --bench: takes no value\n"},
        {{"epochs", NULL}, "prog: epochs: not an option (options start with --)\n"},
        // Only programs that ask for them take these.
        {{"--save", "c.safetensors"}, "prog: --save: unknown option\n"},
        {{"--resume=c", NULL}, "prog: --resume: unknown option\n"},
        {{"--model", "m"}, "prog: --model: unknown option\n"},
        {{"--train-samples", "100"}, "prog: --train-samples: unknown option\n"},
        {{"--bn-momentum=0.9", NULL}, "prog: --bn-momentum: unknown option\n"},
        {{"--test-samples", "10"}, "prog: --test-samples: unknown option\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        example_args a = {.epochs = 5, .batch = 32, .data = "d"};
        char err[4096];
        const char *argv[3] = {"prog", cases[i].argv[0], cases[i].argv[1]};
        int argc = cases[i].argv[1] ? 3 : 2;
        ck_assert_int_eq(parse(&a, err, sizeof err, argc, argv), -1);
        // The reason, a blank line, then the usage.
        size_t len = strlen(cases[i].message);
        ck_assert_msg(!strncmp(err, cases[i].message, len), "case %zu: got '%s'", i, err);
        ck_assert_msg(!strncmp(err + len, "\nusage: prog", 12), "case %zu: '%s'", i, err);
        ck_assert_int_eq(a.epochs, 5);
    }
}
END_TEST

/* ---- char_transformer's model ---- */

static const gpt_config TINY_GPT = {.vocab = 5, .context = 4, .width = 4, .heads = 2,
                                    .blocks = 1, .hidden = 8};
static const int64_t GPT_IDS[8] = {0, 3, 1, 4, 2, 2, 0, 1};
static const int64_t GPT_NEXT[8] = {3, 1, 4, 0, 2, 0, 1, 3};

/* The loss with the model reading the gradient check's float64 copies. */
static tg_tensor *gpt_loss_of(tg_tensor *const *params, int n, void *ctx)
{
    (void)n;
    gpt *g = ctx;
    gpt_bind(g, params);
    tg_tensor *loss = gpt_loss(g, GPT_IDS, GPT_NEXT, 2, 4);
    gpt_bind(g, g->params);
    return loss;
}

/* Every parameter of a whole transformer (embeddings, LayerNorm, causal
 * attention, GELU MLP, residuals, head, cross-entropy) against central
 * differences, and its second derivatives on random directions. Weights are
 * drawn larger than GPT-2's 0.02 so that every path carries a visible
 * gradient. */
START_TEST(test_gpt_gradients_check)
{
    gpt *g = gpt_new(&TINY_GPT, TG_F64, 3);
    ck_assert_ptr_nonnull(g);
    tg_rng rng = tg_rng_seeded(9);
    for (int i = 0; i < g->n_params; i++)
        ck_assert_int_eq(tg_init_tensor(g->params[i], TG_INIT(GLOROT_UNIFORM), 4, 4, &rng),
                         TG_OK);
    tg_gradcheck_report r;
    ck_assert_msg(tg_gradcheck(gpt_loss_of, g, g->n_params, g->params, NULL, &r) == TG_OK,
                  "%s", r.message);
    ck_assert_int_gt(r.checked, 200);
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.directions = 3;
    ck_assert_msg(tg_gradgradcheck(gpt_loss_of, g, g->n_params, g->params, &o, &r) == TG_OK,
                  "%s", r.message);
    gpt_free(g);
}
END_TEST

/* A position's logits do not depend on later characters: the mask works. */
START_TEST(test_gpt_is_causal)
{
    gpt *g = gpt_new(&TINY_GPT, TG_F64, 4);
    tg_tape *tape = tg_tape_new();
    ck_assert_ptr_nonnull(g);
    int64_t other[4] = {0, 3, 4, 4}; /* GPT_IDS[0..3] with the last two changed */
    double a[4 * 5], b[4 * 5];
    ck_assert_int_eq(tg_tensor_to_doubles(gpt_logits(g, GPT_IDS, 1, 4), a), TG_OK);
    ck_assert_int_eq(tg_tensor_to_doubles(gpt_logits(g, other, 1, 4), b), TG_OK);
    for (int k = 0; k < 2 * 5; k++)
        ck_assert_double_eq(a[k], b[k]);
    bool differs = false;
    for (int k = 2 * 5; k < 4 * 5; k++)
        differs |= a[k] != b[k];
    ck_assert(differs);
    tg_tape_free(tape);
    gpt_free(g);
}
END_TEST

/* gpt_save writes safetensors that gpt_load reads back to the same logits,
 * with the configuration and vocabulary (newline and quote included). */
START_TEST(test_gpt_save_load_round_trip)
{
    const char *path = TG_TEST_BUILD_DIR "/gpt_round_trip.safetensors";
    gpt *g = gpt_new(&TINY_GPT, TG_F32, 5);
    tg_tape *tape = tg_tape_new();
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gpt_save(g, path, "\n\"ab\\"), TG_OK);
    char vocab[16];
    gpt *back = gpt_load(path, vocab, sizeof vocab);
    ck_assert_msg(back != NULL, "%s", tg_last_error());
    ck_assert_str_eq(vocab, "\n\"ab\\");
    ck_assert_int_eq(back->cfg.hidden, 8);
    ck_assert_int_eq(gpt_param_count(back), gpt_param_count(g));
    float a[8 * 5], b[8 * 5];
    ck_assert_int_eq(tg_tensor_numel(gpt_logits(g, GPT_IDS, 2, 4)), 40);
    memcpy(a, tg_tensor_data(gpt_logits(g, GPT_IDS, 2, 4)), sizeof a);
    memcpy(b, tg_tensor_data(gpt_logits(back, GPT_IDS, 2, 4)), sizeof b);
    ck_assert_mem_eq(a, b, sizeof a);
    // A vocabulary that disagrees with the stored size is refused.
    ck_assert_int_eq(gpt_save(g, path, "abc"), TG_OK);
    ck_assert_ptr_null(gpt_load(path, vocab, sizeof vocab));
    ck_assert_int_eq(tg_last_status(), TG_EFORMAT);
    ck_assert_ptr_null(gpt_load(TG_TEST_BUILD_DIR "/no_such.safetensors", vocab, sizeof vocab));
    ck_assert_int_eq(tg_last_status(), TG_EIO);
    remove(path);
    tg_tape_free(tape);
    gpt_free(back);
    gpt_free(g);
}
END_TEST

/* Width not a multiple of heads, too many blocks: a clear error. */
START_TEST(test_gpt_refuses_bad_configurations)
{
    gpt_config c = TINY_GPT;
    c.heads = 3;
    ck_assert_ptr_null(gpt_new(&c, TG_F32, 1));
    ck_assert_int_eq(tg_last_status(), TG_EINVAL);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "multiple of heads"));
    c = TINY_GPT;
    c.blocks = GPT_MAX_BLOCKS + 1;
    ck_assert_ptr_null(gpt_new(&c, TG_F32, 1));
    gpt *g = gpt_new(&TINY_GPT, TG_F32, 1);
    tg_tape *tape = tg_tape_new();
    ck_assert_ptr_null(gpt_logits(g, GPT_IDS, 1, 5)); /* longer than the context */
    ck_assert_int_eq(tg_last_status(), TG_EINVAL);
    int64_t bad[4] = {0, 1, 9, 2}; /* id 9 outside the vocabulary */
    ck_assert_ptr_null(gpt_logits(g, bad, 1, 4));
    tg_tape_free(tape);
    gpt_free(g);
}
END_TEST

/* Without --data the shipped digits are found next to the program in the
 * build tree (copied to build/examples/data/mnist-10k), or via TAPEGRAD_DATA. */
START_TEST(test_args_find_data)
{
    char buf[4096];
    setenv("TAPEGRAD_DATA", "/some/where", 1);
    ck_assert_str_eq(example_find_data(NULL, buf, sizeof buf), "/some/where");
    unsetenv("TAPEGRAD_DATA");
    // This test runs as build/tests/check_examples: ../data is not there, so
    // the lookup lists what it tried, unless the install directory has it.
    const char *found = example_find_data(NULL, buf, sizeof buf);
    if (!found) {
        // build/tests/../data is tried, spelled without the "..".
        ck_assert_msg(strstr(buf, "/data/mnist-10k, "), "%s", buf);
        ck_assert_msg(!strstr(buf, "/../"), "%s", buf);
    }
    // From a program in build/examples/<name>/ it is found: the test
    // mnist_mlp_default_data runs one so.
}
END_TEST

static Suite *examples_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *worked = tcase_create("worked_backprop");
    tcase_add_test(worked, test_worked_gradients_match_closed_forms);
    tcase_add_test(worked, test_worked_walkthrough_prints_every_step);
    tcase_add_test(worked, test_worked_writes_its_graph);
    suite_add_tcase(s, worked);
    TCase *mlp = tcase_create("mnist_mlp");
    tcase_set_timeout(mlp, 120);
    tcase_add_test(mlp, test_mlp_learns_embedded_digits);
    suite_add_tcase(s, mlp);
    TCase *transformer = tcase_create("char_transformer");
    tcase_set_timeout(transformer, 120);
    tcase_add_test(transformer, test_gpt_gradients_check);
    tcase_add_test(transformer, test_gpt_is_causal);
    tcase_add_test(transformer, test_gpt_save_load_round_trip);
    tcase_add_test(transformer, test_gpt_refuses_bad_configurations);
    suite_add_tcase(s, transformer);
    TCase *args = tcase_create("args");
    tcase_add_test(args, test_args_accepts_both_forms);
    tcase_add_test(args, test_args_say_why);
    tcase_add_test(args, test_args_find_data);
    tcase_add_test(args, test_args_extras);
    suite_add_tcase(s, args);
    return s;
}

TG_CHECK_MAIN(examples_suite)
