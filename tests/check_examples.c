/* check_examples.c - golden checks of the examples' numbers: the worked 3-2-1
 * backprop example against its closed-form gradients, and a short MLP
 * training run on the embedded digits reaching a stated accuracy. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad/tapegrad.h>

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
    return s;
}

TG_CHECK_MAIN(examples_suite)
