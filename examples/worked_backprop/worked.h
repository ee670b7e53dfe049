/* worked.h - the 3-2-1 sigmoid network of the worked backprop example, shared
 * by the example program and the test that checks it against closed forms. */
#ifndef WORKED_H
#define WORKED_H

#include <stdio.h>

/* Every number the walkthrough derives by hand, from the tape and from the
 * closed-form formulas. */
typedef struct worked_result {
    double z1[2], h[2], z2, y_hat, loss;
    /* From the tape (tg_backward). */
    double dW1[3][2], db1[2], dW2[2], db2;
    /* From the hand-derived formulas. */
    double dL_dyhat, delta2, delta1[2];
    double f_dW1[3][2], f_db1[2], f_dW2[2], f_db2;
    double new_loss;
} worked_result;

/* Runs the example. Writes the walkthrough to out (NULL: silent), with the
 * tape's own account of its backward pass when explain is nonzero, and the
 * graph as Graphviz DOT with values and gradients to dot (NULL: none; this is
 * how docs/worked-backprop.svg is made). Returns 0 on success, -1 with a
 * message on stderr otherwise. */
int worked_run(FILE *out, int explain, FILE *dot, worked_result *r);

#endif
