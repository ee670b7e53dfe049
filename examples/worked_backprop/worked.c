/* worked.c - the worked example: x (1x3) -> sigmoid(x W1 + b1) (1x2) ->
 * sigmoid(h W2 + b2) (1x1) -> binary cross-entropy against y = 1.
 *
 * Weights use the Keras layout (W1 is 3x2: inputs by units), so a layer is
 * x @ W + b. The loss is written out with ops instead of a library loss so that
 * every step of the derivation is visible. */
#include "worked.h"

#include <math.h>

#include <tapegrad/tapegrad.h>

static const double X[3] = {0.5, -0.2, 0.1};
static const double Y = 1.0;
static const double W1[3][2] = {{0.15, -0.3}, {0.2, 0.1}, {-0.1, 0.25}};
static const double B1[2] = {0.05, -0.05};
static const double W2[2] = {0.4, -0.6};
static const double B2 = 0.1;
static const double LR = 0.5;

typedef struct net {
    tg_tensor *w1, *b1, *w2, *b2;
} net;

/* Forward pass on the current tape; returns the loss and, via out pointers,
 * the intermediate tensors. */
static tg_tensor *forward(net *n, tg_tensor *x, tg_tensor **z1, tg_tensor **h, tg_tensor **z2,
                          tg_tensor **y_hat)
{
    *z1 = tg_add(tg_matmul(x, n->w1), n->b1);
    *h = tg_sigmoid(*z1);
    *z2 = tg_add(tg_matmul(*h, n->w2), n->b2);
    *y_hat = tg_sigmoid(*z2);
    // L = -(y ln y_hat + (1 - y) ln(1 - y_hat))
    tg_tensor *pos = tg_mul_scalar(tg_log(*y_hat), Y);
    tg_tensor *neg = tg_mul_scalar(tg_log(tg_rsub_scalar(*y_hat, 1.0)), 1.0 - Y);
    return tg_reshape(tg_neg(tg_add(pos, neg)), 0, NULL);
}

static void closed_forms(worked_result *r)
{
    // dL/dy_hat = -y/y_hat + (1-y)/(1-y_hat); through the sigmoid it becomes
    // delta2 = dL/dz2 = y_hat - y.
    r->dL_dyhat = -Y / r->y_hat + (1 - Y) / (1 - r->y_hat);
    r->delta2 = r->dL_dyhat * r->y_hat * (1 - r->y_hat);
    for (int j = 0; j < 2; j++) {
        r->f_dW2[j] = r->delta2 * r->h[j];
        // delta1_j = delta2 * W2_j * h_j (1 - h_j)
        r->delta1[j] = r->delta2 * W2[j] * r->h[j] * (1 - r->h[j]);
        r->f_db1[j] = r->delta1[j];
        for (int i = 0; i < 3; i++)
            r->f_dW1[i][j] = X[i] * r->delta1[j];
    }
    r->f_db2 = r->delta2;
}

static void row(FILE *out, const char *name, double tape, double formula)
{
    fprintf(out, "  %-10s tape % .12f   formula % .12f   diff %.1e\n", name, tape, formula,
            fabs(tape - formula));
}

static void report_forward(FILE *out, const worked_result *r)
{
    fprintf(out, "Weights (Keras layout: a layer computes x @ W + b)\n");
    for (int i = 0; i < 3; i++)
        fprintf(out, "  W1[%d] = [% .2f, % .2f]\n", i, W1[i][0], W1[i][1]);
    fprintf(out, "  b1 = [% .2f, % .2f]   W2 = [% .2f, % .2f]   b2 = % .2f\n\n", B1[0], B1[1],
            W2[0], W2[1], B2);
    fprintf(out, "Forward pass (x = [%g, %g, %g], y = %g)\n", X[0], X[1], X[2], Y);
    for (int j = 0; j < 2; j++)
        fprintf(out,
                "  z1[%d] = x . W1[:,%d] + b1[%d] = % .12f   h[%d] = sigmoid(z1[%d]) = %.12f\n",
                j, j, j, r->z1[j], j, j, r->h[j]);
    fprintf(out, "  z2 = h . W2 + b2 = % .12f   y_hat = sigmoid(z2) = %.12f\n", r->z2, r->y_hat);
    fprintf(out, "  loss = -(y ln y_hat + (1-y) ln(1-y_hat)) = %.12f\n\n", r->loss);
}

static void report_backward(FILE *out, const worked_result *r)
{
    fprintf(out, "Backward pass: gradients from the tape beside the hand-derived formulas\n");
    fprintf(out, "  dL/dy_hat = -y/y_hat + (1-y)/(1-y_hat)      = % .12f\n", r->dL_dyhat);
    fprintf(out, "  delta2 = dL/dz2 = dL/dy_hat * y_hat(1-y_hat) = % .12f  (= y_hat - y)\n",
            r->delta2);
    for (int j = 0; j < 2; j++)
        row(out, j ? "dL/dW2[1]" : "dL/dW2[0]", r->dW2[j], r->f_dW2[j]);
    row(out, "dL/db2", r->db2, r->f_db2);
    for (int j = 0; j < 2; j++)
        fprintf(out, "  delta1[%d] = delta2 * W2[%d] * h[%d](1-h[%d]) = % .12f\n", j, j, j, j,
                r->delta1[j]);
    char name[32];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            snprintf(name, sizeof name, "dL/dW1[%d][%d]", i, j);
            row(out, name, r->dW1[i][j], r->f_dW1[i][j]);
        }
    for (int j = 0; j < 2; j++) {
        snprintf(name, sizeof name, "dL/db1[%d]", j);
        row(out, name, r->db1[j], r->f_db1[j]);
    }
    fprintf(out, "\nOne gradient-descent step (lr = %g): loss %.12f -> %.12f\n", LR, r->loss,
            r->new_loss);
}

static void sgd_step(tg_tensor *p)
{
    double *w = tg_tensor_data(p);
    const double *g = tg_tensor_data(tg_tensor_grad(p));
    for (int64_t i = 0; i < tg_tensor_numel(p); i++)
        w[i] -= LR * g[i];
}

int worked_run(FILE *out, int explain, FILE *dot, worked_result *r)
{
    tg_tape *tape = tg_tape_new();
    net n = {
        .w1 = tg_tensor_from_data(TG_F64, TG_SHAPE(3, 2), W1),
        .b1 = tg_tensor_from_data(TG_F64, TG_SHAPE(2), B1),
        .w2 = tg_tensor_from_data(TG_F64, TG_SHAPE(2, 1), W2),
        .b2 = tg_tensor_from_data(TG_F64, TG_SHAPE(1), &B2),
    };
    tg_tensor *params[4] = {n.w1, n.b1, n.w2, n.b2};
    tg_tensor *x = tg_tensor_from_data(TG_F64, TG_SHAPE(1, 3), X);
    int rc = -1;
    for (int i = 0; i < 4; i++)
        if (tg_tensor_set_requires_grad(params[i], true) != TG_OK)
            goto done;

    tg_tensor *z1, *h, *z2, *y_hat;
    tg_tensor *loss = forward(&n, x, &z1, &h, &z2, &y_hat);
    if (!loss)
        goto done;
    for (int j = 0; j < 2; j++) {
        r->z1[j] = ((double *)tg_tensor_data(z1))[j];
        r->h[j] = ((double *)tg_tensor_data(h))[j];
    }
    r->z2 = tg_tensor_item(z2);
    r->y_hat = tg_tensor_item(y_hat);
    r->loss = tg_tensor_item(loss);

    if (out)
        report_forward(out, r);
    if (out && explain) {
        fprintf(out, "The tape's own account of the backward pass, op by op from the loss:\n");
        tg_tape_explain(tape, out);
    }
    if (tg_backward(loss) != TG_OK)
        goto done;
    tg_tape_explain(tape, NULL);
    if (out && explain)
        fprintf(out, "\n");
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            r->dW1[i][j] = ((double *)tg_tensor_data(tg_tensor_grad(n.w1)))[i * 2 + j];
    for (int j = 0; j < 2; j++) {
        r->db1[j] = ((double *)tg_tensor_data(tg_tensor_grad(n.b1)))[j];
        r->dW2[j] = ((double *)tg_tensor_data(tg_tensor_grad(n.w2)))[j];
    }
    r->db2 = tg_tensor_item(tg_tensor_grad(n.b2));
    closed_forms(r);
    // After backward, so that the picture shows each weight's gradient too.
    if (dot && tg_tape_dot(tape, dot, 1, &loss, TG_DOT_VALUES | TG_DOT_GRADS) != TG_OK)
        goto done;

    for (int i = 0; i < 4; i++)
        sgd_step(params[i]);
    tg_tape_reset(tape);
    loss = forward(&n, x, &z1, &h, &z2, &y_hat);
    if (!loss)
        goto done;
    r->new_loss = tg_tensor_item(loss);
    if (out)
        report_backward(out, r);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "worked_backprop: %s\n", tg_last_error());
    for (int i = 0; i < 4; i++)
        tg_tensor_free(params[i]);
    tg_tensor_free(x);
    tg_tape_free(tape);
    return rc;
}
