/* args.c - the examples' flags (see args.h). Kept out of the library: a
 * program's command line is the program's business, but every example should
 * refuse bad values the same way and say why. */
#define _POSIX_C_SOURCE 200809L
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef EXAMPLES_INSTALLED_SHARE
#define EXAMPLES_INSTALLED_SHARE "/usr/local/share/tapegrad"
#endif
#ifndef EXAMPLES_INSTALLED_DATA
#define EXAMPLES_INSTALLED_DATA EXAMPLES_INSTALLED_SHARE "/mnist-10k"
#endif

static void usage(FILE *f, const char *prog, const char *what, const example_args *d)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  %s\n\n"
            "  --epochs N             passes over the training data (default %d)\n"
            "  --batch N              samples per step (default %lld)\n"
            "  --lr X                 learning rate (default %g)\n"
            "  --seed N               seed for initial weights and shuffling (default %llu)\n"
            "  --verbose N            0 silent, 1 progress bar, 2 one line per epoch "
            "(default %d)\n"
            "  --validation-split X   hold out this fraction of the training data "
            "(default %g)\n"
            "  --patience N           stop when val_loss has not improved for N epochs\n"
            "                         (needs --validation-split; default: no early stopping)\n"
            "  --data DIR             directory with the four MNIST-format IDX files, raw or\n"
            "                         .gz (default: the 10,000 digits shipped with tapegrad,\n"
            "                         found next to the program, in $TAPEGRAD_DATA or in\n"
            "                         %s;\n"
            "                         full Fashion-MNIST: /usr/share/datasets/fashion-mnist)\n"
            "  --bench                also print epoch_seconds, max_rss_kib, the tape's bytes,\n"
            "                         the kernel and the thread count (mnist_cnn)\n",
            prog, what, d->epochs, (long long)d->batch, d->lr, (unsigned long long)d->seed,
            d->verbose, d->validation_split, EXAMPLES_INSTALLED_DATA);
    if (d->extras & EXAMPLE_CHECKPOINTS)
        fprintf(f, "  --save PATH            write a training checkpoint (model, optimizer, epoch)\n"
                   "                         to PATH after every epoch\n"
                   "  --resume PATH          go on from such a checkpoint, up to --epochs\n");
    if (d->extras & EXAMPLE_MODEL_FILE)
        fprintf(f, "  --model PATH           the model file (safetensors; default %s)\n",
                d->model_file ? d->model_file : "none");
    if (d->extras & EXAMPLE_TRAIN_SAMPLES)
        fprintf(f, "  --train-samples N      train on the first N training images only "
                   "(default: all)\n"
                   "  --test-samples N       test on the first N test images only "
                   "(default: all)\n");
    if (d->extras & EXAMPLE_BN_MOMENTUM)
        fprintf(f, "  --bn-momentum X        BatchNorm's momentum in [0, 1], the weight of the old\n"
                   "                         running statistics (default %g; PyTorch's "
                   "momentum is 1 - X)\n", d->bn_momentum);
    fprintf(f, "  --help                 this text\n"
               "Values may also be given as --flag=value.\n");
}

/* What a range means in words, for the messages. */
static const char *int_kind(long long lo)
{
    return lo == 1 ? "a positive integer" : lo == 0 ? "a non-negative integer" : "an integer";
}

int example_parse_int(const char *s, long long lo, long long hi, long long *out, char *why,
                      size_t size)
{
    char *end;
    errno = 0;
    // strtoll alone would accept " 5", "5.0" up to the dot, and wrap silently.
    long long v = *s && !isspace((unsigned char)*s) ? strtoll(s, &end, 10) : 0;
    if (!*s || isspace((unsigned char)*s) || *end || errno == ERANGE || v < lo || v > hi) {
        bool number = *s && !isspace((unsigned char)*s) && !*end && errno != ERANGE;
        if (number && v >= lo)
            snprintf(why, size, "expected %s up to %lld, got %s", int_kind(lo), hi, s);
        else
            snprintf(why, size, "expected %s, got %s%s%s", int_kind(lo), *s ? "" : "'",
                     s, *s ? "" : "'");
        return -1;
    }
    *out = v;
    return 0;
}

/* The seed takes the full uint64_t range, which long long cannot hold. */
static int parse_u64(const char *s, uint64_t *out, char *why, size_t size)
{
    char *end;
    errno = 0;
    unsigned long long v = isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
    if (!isdigit((unsigned char)*s) || *end || errno == ERANGE) {
        snprintf(why, size, "expected a non-negative integer%s, got %s%s%s",
                 errno == ERANGE ? " below 2^64" : "", *s ? "" : "'", s, *s ? "" : "'");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_real(const char *s, double lo, double hi, bool hi_open, const char *kind,
                      double *out, char *why, size_t size)
{
    char *end;
    double v = *s && !isspace((unsigned char)*s) ? strtod(s, &end) : NAN;
    if (!*s || isspace((unsigned char)*s) || *end || !(v >= lo) || v > hi ||
        (hi_open && v == hi)) {
        snprintf(why, size, "expected %s, got %s%s%s", kind, *s ? "" : "'", s, *s ? "" : "'");
        return -1;
    }
    *out = v;
    return 0;
}

/* Applies one flag's value; -1 with the reason in why. */
static int apply(example_args *a, const char *name, const char *value, char *why, size_t size)
{
    long long v;
    int rc;
    if (!strcmp(name, "--epochs")) {
        if ((rc = example_parse_int(value, 1, 1000000, &v, why, size)) == 0)
            a->epochs = (int)v;
    } else if (!strcmp(name, "--batch")) {
        if ((rc = example_parse_int(value, 1, 1000000000, &v, why, size)) == 0)
            a->batch = v;
    } else if (!strcmp(name, "--verbose")) {
        rc = example_parse_int(value, 0, 2, &v, why, size);
        if (rc == 0)
            a->verbose = (int)v;
        else
            snprintf(why, size, "expected 0, 1 or 2, got %s", value);
    } else if (!strcmp(name, "--train-samples") || !strcmp(name, "--test-samples")) {
        if ((rc = example_parse_int(value, 1, INT64_MAX, &v, why, size)) == 0)
            *(name[3] == 'r' ? &a->train_samples : &a->test_samples) = v;
    } else if (!strcmp(name, "--bn-momentum"))
        rc = parse_real(value, 0, 1, false, "a number in [0, 1]", &a->bn_momentum, why, size);
    else if (!strcmp(name, "--lr"))
        rc = parse_real(value, 0, 1e6, false, "a non-negative number", &a->lr, why, size);
    else if (!strcmp(name, "--validation-split"))
        rc = parse_real(value, 0, 1, true, "a number in [0, 1)", &a->validation_split, why,
                        size);
    else if (!strcmp(name, "--patience")) {
        if ((rc = example_parse_int(value, 0, 1000000, &v, why, size)) == 0)
            a->patience = (int)v;
    } else if (!strcmp(name, "--seed"))
        rc = parse_u64(value, &a->seed, why, size);
    else if (!strcmp(name, "--save") || !strcmp(name, "--resume") || !strcmp(name, "--model")) {
        rc = *value ? 0 : -1;
        if (rc != 0)
            snprintf(why, size, "expected a path, got ''");
        else if (name[2] == 's')
            a->save = value;
        else if (name[2] == 'r')
            a->resume = value;
        else
            a->model_file = value;
    } else if (!strcmp(name, "--data")) {
        rc = *value ? 0 : -1;
        if (rc == 0)
            a->data = value;
        else
            snprintf(why, size, "expected a directory, got ''");
    } else {
        snprintf(why, size, "unknown option");
        rc = -1;
    }
    return rc;
}

static bool known(const char *name, unsigned extras)
{
    if (!strcmp(name, "--save") || !strcmp(name, "--resume"))
        return extras & EXAMPLE_CHECKPOINTS;
    if (!strcmp(name, "--model"))
        return extras & EXAMPLE_MODEL_FILE;
    if (!strcmp(name, "--train-samples") || !strcmp(name, "--test-samples"))
        return extras & EXAMPLE_TRAIN_SAMPLES;
    if (!strcmp(name, "--bn-momentum"))
        return extras & EXAMPLE_BN_MOMENTUM;
    static const char *const names[] = {"--epochs", "--batch", "--lr", "--seed", "--verbose",
                                        "--validation-split", "--patience", "--data"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return true;
    return false;
}

static int bad(const char *prog, const char *what, const example_args *d, const char *flag,
               const char *why)
{
    fprintf(stderr, "%s: %s: %s\n\n", prog, flag, why);
    usage(stderr, prog, what, d);
    return -1;
}

int example_parse_args(int argc, char **argv, const char *what, example_args *a)
{
    example_args d = *a;
    const char *prog = argc > 0 ? argv[0] : "example";
    char why[256], name[64];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout, prog, what, &d);
            return 1;
        }
        if (!strcmp(arg, "--bench")) {
            a->bench = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return bad(prog, what, &d, arg, "not an option (options start with --)");
        // "--flag=value" or "--flag value".
        const char *eq = strchr(arg, '='), *value;
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
            value = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
            value = i + 1 < argc ? argv[i + 1] : NULL;
        }
        if (!strcmp(name, "--bench") || !strcmp(name, "--help"))
            return bad(prog, what, &d, name, "takes no value");
        if (!known(name, a->extras))
            return bad(prog, what, &d, name, "unknown option");
        if (!value)
            return bad(prog, what, &d, name, "missing value");
        if (apply(a, name, value, why, sizeof why) != 0)
            return bad(prog, what, &d, name, why);
        if (!eq)
            i++;
    }
    if (!a->data) {
        static char found[4096];
        a->data = example_find_data(prog, found, sizeof found);
        if (!a->data) {
            fprintf(stderr, "%s: no --data given and the shipped digits were not found "
                    "(tried %s); pass --data DIR or set TAPEGRAD_DATA\n", prog, found);
            return -1;
        }
    }
    return 0;
}

static bool has_images(const char *dir)
{
    char path[4300];
    for (int gz = 1; gz >= 0; gz--) {
        int n = snprintf(path, sizeof path, "%s/train-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
        if (n > 0 && (size_t)n < sizeof path && access(path, R_OK) == 0)
            return true;
    }
    return false;
}

/* The directory holding the running program: /proc/self/exe where Linux has
 * it (argv0 may be a bare name found on PATH), else argv0's own path. */
static bool program_dir(const char *argv0, char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n > 0 && (size_t)n < size - 1)
        buf[n] = '\0';
    else if (argv0 && strchr(argv0, '/') && strlen(argv0) < size)
        snprintf(buf, size, "%s", argv0);
    else
        return false;
    char *slash = strrchr(buf, '/');
    if (!slash)
        return false;
    *slash = '\0';
    return true;
}

/* dir + "/" + rel with each leading "../" of rel taken off dir instead, so
 * that messages show build/examples/data/mnist-10k, not .../mnist_cnn/../data. */
static void join_relative(char *out, size_t size, const char *dir, const char *rel)
{
    snprintf(out, size, "%s", dir);
    while (!strncmp(rel, "../", 3)) {
        char *slash = strrchr(out, '/');
        if (!slash || slash == out)
            break;
        *slash = '\0';
        rel += 3;
    }
    size_t len = strlen(out);
    snprintf(out + len, size - len, "/%s", rel);
}

/* The first directory of the search order in args.h that holds what found()
 * looks for, sub being the shipped directory's name ("mnist-10k"); installed
 * is the configured install directory. On failure buf lists what was tried. */
static const char *find_shipped(const char *argv0, const char *sub, const char *installed,
                                bool (*found)(const char *dir, const void *what),
                                const void *what, char *buf, size_t size)
{
    static const char *const relative[] = {"../data/", "../share/tapegrad/",
                                           "../../share/tapegrad/"};
    char dir[4096], rel[512], path[4700];
    size_t len = 0;
    buf[0] = '\0';
    if (program_dir(argv0, dir, sizeof dir))
        for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
            snprintf(rel, sizeof rel, "%s%s", relative[i], sub);
            join_relative(path, sizeof path, dir, rel);
            if (found(path, what)) {
                snprintf(buf, size, "%s", path);
                return buf;
            }
            if (len < size)
                len += (size_t)snprintf(buf + len, size - len, "%s, ", path);
        }
    if (found(installed, what)) {
        snprintf(buf, size, "%s", installed);
        return buf;
    }
    if (len < size)
        snprintf(buf + len, size - len, "%s", installed);
    return NULL;
}

static bool has_images_in(const char *dir, const void *unused)
{
    (void)unused;
    return has_images(dir);
}

const char *example_find_data(const char *argv0, char *buf, size_t size)
{
    const char *env = getenv("TAPEGRAD_DATA");
    if (env && *env) {
        snprintf(buf, size, "%s", env);
        return buf;
    }
    return find_shipped(argv0, "mnist-10k", EXAMPLES_INSTALLED_DATA, has_images_in, NULL, buf,
                        size);
}

static bool has_file(const char *dir, const void *name)
{
    char path[4300];
    int n = snprintf(path, sizeof path, "%s/%s", dir, (const char *)name);
    return n > 0 && (size_t)n < sizeof path && access(path, R_OK) == 0;
}

const char *example_find_shipped_file(const char *argv0, const char *sub, const char *name,
                                      char *buf, size_t size)
{
    char installed[4096];
    snprintf(installed, sizeof installed, "%s/%s", EXAMPLES_INSTALLED_SHARE, sub);
    if (!find_shipped(argv0, sub, installed, has_file, name, buf, size))
        return NULL;
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "/%s", name);
    return buf;
}
