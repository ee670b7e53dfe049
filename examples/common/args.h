/* args.h - the MNIST examples' command line: flags, their checks and the
 * default data directory. The training itself is the library's tg_fit. */
#ifndef EXAMPLES_ARGS_H
#define EXAMPLES_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct example_args {
    int epochs;
    int64_t batch;
    double lr;
    uint64_t seed;
    int verbose;             /* tg_fit_opts.verbose */
    double validation_split; /* tg_fit_opts.validation_split */
    int patience;            /* early stopping on val_loss; -1: none */
    const char *data;        /* directory with the four IDX files; NULL: the default */
    bool bench;              /* machine-readable timing lines for tools/bench */
    /* Set by the program before parsing: which of the flags below it takes
     * (the others are unknown options). */
    unsigned extras;         /* EXAMPLE_CHECKPOINTS | EXAMPLE_MODEL_FILE | ... */
    const char *save;        /* --save PATH: a training checkpoint after every epoch */
    const char *resume;      /* --resume PATH: go on from such a checkpoint */
    const char *model_file;  /* --model PATH: a model file (tg_model_save) */
    int64_t train_samples;   /* --train-samples N: train on the first N only; 0: all */
    int64_t test_samples;    /* --test-samples N: test on the first N only; 0: all */
    double bn_momentum;      /* --bn-momentum X: BatchNorm's momentum (Keras's convention) */
} example_args;

enum {
    EXAMPLE_CHECKPOINTS = 1u << 0,   /* --save, --resume */
    EXAMPLE_MODEL_FILE = 1u << 1,    /* --model */
    EXAMPLE_TRAIN_SAMPLES = 1u << 2, /* --train-samples, --test-samples */
    EXAMPLE_BN_MOMENTUM = 1u << 3,   /* --bn-momentum */
};

/* Parses the flags over the defaults in *a: --epochs N --batch N --lr X
 * --seed N --verbose N --validation-split X --patience N
 * --data DIR --bench --help, each
 * value as "--flag value" or "--flag=value". Integers must be whole numbers
 * in range; a bad value is reported with the reason:
 *     mnist_cnn: --epochs: expected a positive integer, got 2.5
 * When --data is absent, a->data becomes example_find_data's directory.
 * Returns 0 to go on, 1 when --help was printed, -1 after printing an error
 * (and the usage) to stderr. */
int example_parse_args(int argc, char **argv, const char *what, example_args *a);

/* The parsing of one value, as example_parse_args does it: 0 with *out set,
 * or -1 with the reason ("expected a positive integer, got -1") in why. */
int example_parse_int(const char *s, long long lo, long long hi, long long *out, char *why,
                      size_t size);

/* The embedded digits (examples/data/mnist-10k): $TAPEGRAD_DATA when set,
 * else the first of these that holds train-images-idx3-ubyte(.gz), relative
 * to the running program (argv0 or /proc/self/exe): ../data/mnist-10k (the
 * build tree, where meson copies the data), ../share/tapegrad/mnist-10k and
 * ../../share/tapegrad/mnist-10k (installed), then the configured install
 * directory <datadir>/tapegrad/mnist-10k. Writes the directory into buf and
 * returns buf, or returns NULL and lists what was tried in buf. */
const char *example_find_data(const char *argv0, char *buf, size_t size);

/* Another shipped file, examples/data/<sub>/<name>, looked up in the same
 * places (with <datadir>/tapegrad/<sub> last). Writes the file's path into
 * buf and returns buf, or returns NULL and lists the directories tried in buf. */
const char *example_find_shipped_file(const char *argv0, const char *sub, const char *name,
                                      char *buf, size_t size);

#endif
