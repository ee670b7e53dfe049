/* train.h - what the MNIST examples share: command-line flags, a Keras-style
 * training loop with its progress line, and the test evaluation. */
#ifndef EXAMPLES_TRAIN_H
#define EXAMPLES_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include <tapegrad/tapegrad.h>

typedef struct example_args {
    int epochs;
    int64_t batch;
    double lr;
    uint64_t seed;
    const char *data; /* directory with the four IDX files */
    bool bench;       /* machine-readable timing lines for tools/bench */
} example_args;

/* Parses --epochs --batch --lr --seed --data --bench --help over defaults in
 * *a. Returns 0 to go on, 1 when --help was printed, -1 on a bad flag (after
 * printing the usage to stderr). */
int example_parse_args(int argc, char **argv, const char *what, example_args *a);

/* The directory of the embedded digits (examples/data/mnist-10k), as found
 * next to the source tree or installed. */
const char *example_default_data(void);

/* Trains model with opt for a->epochs epochs over the training split, printing
 * "Epoch i/n" and a Keras-style progress line (updated in place on a
 * terminal), then evaluates on the test split. Returns 0, or -1 after printing
 * the library's error. */
int example_fit(tg_model *model, tg_optim *opt, const tg_dataset *ds, const example_args *a);

#endif
