/* conv_rows.h - the row moves of im2col and col2im, float32, chosen per CPU.
 *
 * Both transforms move `rows` runs of n floats between an image and its
 * columns, each run at its own stride on each side. The CNN's runs are short
 * (conv2: 11 floats, conv1: 26), so the moves themselves are the cost:
 * AVX-512 does one masked load and store per run of up to 16, and col2im's
 * adds for all the window positions that reach an image row in registers
 * (one load and store of the row instead of one per position: a store then
 * a load of the same bytes shifted by a float cannot be forwarded, and
 * stalled); the baseline moves 16 bytes at a time, overlapping at the end of
 * a run. Every variant writes
 * exactly the run's bytes and adds each element's terms in the same order,
 * so all give the same bytes. */
#ifndef TG_KERNELS_CONV_ROWS_H
#define TG_KERNELS_CONV_ROWS_H

#include <stdint.h>

/* The window positions (u, v) that add to one image row in col2im, in
 * im2col's order: tap t adds the run cols[src[t] + j], j in [lo[t], hi[t]),
 * to row[shift[t] + j]. */
#define TG__CONV_TAPS 32
typedef struct tg__conv_taps {
    int64_t n;
    int64_t src[TG__CONV_TAPS], shift[TG__CONV_TAPS], lo[TG__CONV_TAPS], hi[TG__CONV_TAPS];
} tg__conv_taps;

typedef struct tg__conv_rows {
    const char *name;
    /* dst[r * ds + j] = src[r * ss + j] for r < rows, j < n. */
    void (*copy)(float *dst, int64_t ds, const float *src, int64_t ss, int64_t rows, int64_t n);
    /* col2im's adds for `rows` image rows from y of each of `planes`
     * channels, rows that the same window positions reach (taps->src for
     * the first; each later row reads cr further on in cols and writes dr
     * further on in the image): for p < planes, r < rows, t < taps->n in
     * order, for j in [lo[t], hi[t]):
     *     dst[p * ds + r * dr + shift[t] + j] += cols[p * cs + r * cr + src[t] + j].
     * Each element's terms are added in tap order, one rounding each; dst
     * and cols do not overlap. */
    void (*add_taps)(float *dst, int64_t ds, int64_t dr, const float *cols, int64_t cs,
                     int64_t cr, int64_t planes, int64_t rows, const tg__conv_taps *taps);
} tg__conv_rows;

/* The variants this CPU runs, the baseline first; tg__conv_rows_best() is
 * the one the transforms use (the widest). */
int tg__conv_rows_variants(void);
const tg__conv_rows *tg__conv_rows_variant(int v);
const tg__conv_rows *tg__conv_rows_best(void);

#endif
