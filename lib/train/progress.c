/* progress.c - Keras's progress output for tg_fit: "Epoch i/n", the bar
 * redrawn in place on a terminal, and each epoch's final line. The text is
 * the one examples/common printed before the loop moved here; tests compare
 * it byte for byte. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "train/train_internal.h"

double tg__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool tg__is_tty(FILE *f, tg_tty mode)
{
    if (mode != TG_TTY_AUTO)
        return mode == TG_TTY_YES;
    int fd = fileno(f);
    return fd >= 0 && isatty(fd);
}

void tg__progress_epoch(const tg__progress *p, int epoch, int epochs)
{
    if (p->verbose == 0)
        return;
    fprintf(p->f, "Epoch %d/%d\n", epoch, epochs);
    fflush(p->f);
}

/* " - loss: 0.1234 - accuracy: 0.9000", and the val_ pair when log has them. */
static void print_values(const tg__progress *p, double loss, double metric,
                         const tg_epoch_log *log)
{
    fprintf(p->f, " - loss: %.4f", loss);
    if (p->metric)
        fprintf(p->f, " - %s: %.4f", p->metric, metric);
    if (log && p->val) {
        fprintf(p->f, " - val_loss: %.4f", log->val_loss);
        if (p->metric)
            fprintf(p->f, " - val_%s: %.4f", p->metric, log->val_metric);
    }
}

/* "250/250 [==============================] - ", with '>' at the head while
 * the epoch runs. */
static void print_bar(const tg__progress *p, int64_t done, int64_t total, bool final)
{
    char bar[31];
    int filled = (int)(30 * done / total);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '=' : '.';
    if (!final && filled < 30)
        bar[filled] = '>';
    bar[30] = '\0';
    fprintf(p->f, "%s%lld/%lld [%s] - ", p->tty ? "\r" : "", (long long)done, (long long)total,
            bar);
}

/* "11ms/step", or "640us/step" below a millisecond ("1ms", not "1000us",
 * for what rounds to a millisecond). */
static void print_per_step(const tg__progress *p, double per_step)
{
    if (per_step >= 0.9995e-3)
        fprintf(p->f, "%.0fms/step", 1e3 * per_step);
    else
        fprintf(p->f, "%.0fus/step", 1e6 * per_step);
}

void tg__progress_update(const tg__progress *p, int64_t done, int64_t total, double elapsed,
                         double loss, double metric)
{
    if (p->verbose != 1 || !p->tty)
        return;
    print_bar(p, done, total, false);
    double per_step = elapsed / (double)done;
    fprintf(p->f, "ETA: %.0fs", per_step * (double)(total - done));
    print_values(p, loss, metric, NULL);
    fflush(p->f);
}

void tg__progress_final(const tg__progress *p, int64_t done, int64_t total, double elapsed,
                        const tg_epoch_log *log)
{
    double per_step = done ? elapsed / (double)done : 0.0;
    if (p->verbose == 1) {
        print_bar(p, done, total, true);
        fprintf(p->f, "%.0fs ", elapsed);
        print_per_step(p, per_step);
        print_values(p, log->loss, log->metric, log);
        fputc('\n', p->f);
    } else if (p->verbose == 2) {
        // Keras's verbose=2 line: no bar, the epoch's time, then the values.
        fprintf(p->f, "%lld/%lld - %.0fs", (long long)done, (long long)total, elapsed);
        print_values(p, log->loss, log->metric, log);
        fprintf(p->f, " - %.0fs/epoch - ", elapsed);
        print_per_step(p, per_step);
        fputc('\n', p->f);
    }
    fflush(p->f);
}
