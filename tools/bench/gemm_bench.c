/* gemm_bench - GFLOP/s of tg__gemm_f32/f64 on the products the MNIST CNN
 * (batch 32) actually runs, one line per shape:
 *     <name> <ta> <tb> <M> <N> <K> <beta> <GFLOP/s>
 * Each figure is the median over REPEATS timings of enough calls to last
 * about 20 ms, so one noisy slice of a shared machine does not decide it.
 * tools/bench/gemm_torch.py times torch.mm and numpy.matmul on the same list
 * (and, given this program's path, runs all three and prints the ratios).
 * The first line names the kernel and the thread count (TAPEGRAD_KERNEL and
 * TAPEGRAD_NUM_THREADS choose them), the last the peak RSS. Usage:
 *     gemm_bench [f32|f64] [shape-name | [t]MxNxK[t|p]]
 * where a t before or after the sizes transposes A or B (e.g. 9x32x676t is
 * conv1.dw's shape without its beta), and a p after them lays B out as the
 * convolutions' forward does (rows tg__gemm_b_ld_f32 apart, zeros past N,
 * marked readable: float32 only).
 * To judge a change to one kernel on a machine shared with other work:
 *   TG_BENCH_CLOCK=cpu   times CPU time of the process (CLOCK_PROCESS_CPUTIME_ID)
 *                        instead of wall time, so time spent descheduled does
 *                        not count (with threads: GFLOP per CPU-second);
 *   TG_BENCH_KERNELS=avx2,avx512   times each named kernel on each shape, the
 *                        kernels alternating repeat by repeat so that a slow
 *                        spell of the machine falls on all of them; one column
 *                        per kernel, then the ratio of the last to the first.
 * The shape list is repeated in gemm_torch.py; keep the two in step. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "tapegrad/tapegrad.h"

typedef struct shape {
    const char *name;
    bool ta, tb;
    int64_t M, N, K;
    float beta; /* 1 where the op layer accumulates (conv weight gradient) */
    bool pad_b; /* B's rows as the conv forward lays them out (see Usage) */
} shape;

/* Per image for the convolutions (the op layer loops over the batch). */
static const shape shapes[] = {
    {"conv1.fwd", false, false, 32, 676, 9, 0, true}, /* W (32,9) cols (9,26*26) */
    {"conv1.dw", false, true, 9, 32, 676, 1, false},      /* dw^T: cols (9,676) g^T */
    {"conv2.fwd", false, false, 64, 121, 288, 0, true}, /* W (64,288) cols (288,11*11) */
    {"conv2.dx", true, false, 288, 121, 64, 0, false},    /* W^T g */
    {"conv2.dw", false, true, 288, 64, 121, 1, false},    /* dw^T: cols (288,121) g^T */
    {"dense1.fwd", false, false, 32, 64, 1600, 0, false}, /* x (32,1600) W (1600,64) */
    {"dense1.dx", false, true, 32, 1600, 64, 0, false},   /* g W^T */
    {"dense1.dw", true, false, 1600, 64, 32, 0, false},   /* x^T g */
    {"dense2.fwd", false, false, 32, 10, 64, 0, false},
    {"square256", false, false, 256, 256, 256, 0, false}, /* reference points, not in the CNN */
    {"square1024", false, false, 1024, 1024, 1024, 0, false},
};

enum { REPEATS = 9 };

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* B's row stride: K or N, or the conv forward's padded rows. */
static int64_t ldb_of(const shape *s, bool f64)
{
    if (s->pad_b && !f64 && !s->tb)
        return tg__gemm_b_ld_f32(s->N, s->K);
    return s->tb ? s->K : s->N;
}

static void call(const shape *s, bool f64, const void *A, const void *B, void *C)
{
    int64_t lda = s->ta ? s->M : s->K, ldb = ldb_of(s, f64);
    if (s->pad_b && !f64 && !s->tb) {
        tg__gemm_epi epi = {.b_readable = ldb};
        tg__gemm_f32_epi(s->ta, false, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N,
                         &epi);
    } else if (f64)
        tg__gemm_f64(s->ta, s->tb, s->M, s->N, s->K, 1.0, A, lda, B, ldb, s->beta, C, s->N);
    else
        tg__gemm_f32(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N);
}

enum { MAX_KERNELS = 3 };

/* Median GFLOP/s of each of the n kernels (NULL: the current one) on s. */
static void bench(const shape *s, bool f64, int n, const char *const *kernels, double *out)
{
    size_t es = f64 ? sizeof(double) : sizeof(float);
    // B holds K rows of ldb (or N rows of K): past N the padding, whose
    // values (small, finite) do not enter C.
    size_t na = (size_t)(s->M * s->K), nc = (size_t)(s->M * s->N);
    size_t nb = (size_t)(s->tb ? s->N * s->K : s->K * ldb_of(s, f64));
    unsigned char *A = malloc(na * es), *B = malloc(nb * es), *C = malloc(nc * es);
    if (!A || !B || !C) {
        fprintf(stderr, "gemm_bench: out of memory\n");
        exit(1);
    }
    // Small values in [-0.5, 0.5): accumulated with beta 1 they stay finite
    // (denormals or infinities would time something else).
    unsigned x = 12345;
    for (size_t i = 0; i < na + nb + nc; i++) {
        x = x * 1103515245u + 12345u;
        double v = (double)(x >> 8) / (double)(1u << 24) - 0.5;
        unsigned char *p = i < na ? A + i * es : i < na + nb ? B + (i - na) * es
                                                             : C + (i - na - nb) * es;
        if (f64)
            memcpy(p, &v, es);
        else {
            float f = (float)v;
            memcpy(p, &f, es);
        }
    }
    double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;
    // Calibrate: enough calls per timing to last about 20 ms.
    long calls = 1;
    for (;;) {
        double t0 = now();
        for (long c = 0; c < calls; c++)
            call(s, f64, A, B, C);
        if (now() - t0 > 0.02 || calls > (1L << 30))
            break;
        calls *= 2;
    }
    double rates[MAX_KERNELS][REPEATS];
    for (int r = 0; r < REPEATS; r++)
        for (int k = 0; k < n; k++) {
            if (kernels[k] && tg_set_kernel(kernels[k]) != TG_OK) {
                fprintf(stderr, "gemm_bench: kernel %s: %s\n", kernels[k], tg_last_error());
                exit(1);
            }
            call(s, f64, A, B, C); // the switch's first call warms this kernel's code
            double t0 = now();
            for (long c = 0; c < calls; c++)
                call(s, f64, A, B, C);
            rates[k][r] = flop * (double)calls / (now() - t0) * 1e-9;
        }
    for (int k = 0; k < n; k++) {
        qsort(rates[k], REPEATS, sizeof rates[k][0], cmp);
        out[k] = rates[k][REPEATS / 2];
    }
    free(A);
    free(B);
    free(C);
}

/* VmHWM, not getrusage: ru_maxrss survives exec on Linux, so under a Python
 * driver it would report the interpreter's peak before the exec. */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    bool f64 = argc > 1 && strcmp(argv[1], "f64") == 0;
    const char *only = argc > 2 ? argv[2] : NULL;
    const char *clk = getenv("TG_BENCH_CLOCK");
    if (clk && strcmp(clk, "cpu") == 0)
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    // TG_BENCH_KERNELS: a comma-separated list, copied so it can be cut up.
    static char list[64];
    const char *kernels[MAX_KERNELS] = {NULL};
    int n = 1;
    const char *env = getenv("TG_BENCH_KERNELS");
    if (env && *env) {
        snprintf(list, sizeof list, "%s", env);
        n = 0;
        for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < MAX_KERNELS;
             tok = strtok_r(NULL, ",", &save))
            kernels[n++] = tok;
    }
    if (n > 1) {
        printf("# kernels");
        for (int k = 0; k < n; k++)
            printf(" %s", kernels[k]);
        printf(" threads %d clock %s\n", tg_num_threads(),
               bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu");
    } else {
        if (kernels[0] && tg_set_kernel(kernels[0]) != TG_OK) {
            fprintf(stderr, "gemm_bench: kernel %s: %s\n", kernels[0], tg_last_error());
            return 1;
        }
        printf("# kernel %s threads %d\n", tg_kernel_name(), tg_num_threads());
    }
    shape custom = {.name = only};
    long long m, nn, kk;
    int used = 0;
    const char *dims = only && only[0] == 't' ? only + 1 : only;
    bool is_custom = dims && sscanf(dims, "%lldx%lldx%lld%n", &m, &nn, &kk, &used) == 3 &&
                     m > 0 && nn > 0 && kk > 0;
    if (is_custom) {
        custom.ta = dims != only;
        custom.tb = dims[used] == 't';
        custom.pad_b = dims[used] == 'p';
        custom.M = m, custom.N = nn, custom.K = kk;
    }
    for (size_t i = 0; i < (is_custom ? 1 : sizeof shapes / sizeof shapes[0]); i++) {
        const shape *s = is_custom ? &custom : &shapes[i];
        if (!is_custom && only && strcmp(only, s->name) != 0)
            continue;
        double rate[MAX_KERNELS];
        bench(s, f64, n, kernels, rate);
        printf("%-11s %d %d %5lld %5lld %5lld %g", s->name, s->ta, s->tb, (long long)s->M,
               (long long)s->N, (long long)s->K, (double)s->beta);
        for (int k = 0; k < n; k++)
            printf(" %7.2f", rate[k]);
        if (n > 1)
            printf("  %.3f", rate[n - 1] / rate[0]);
        printf("\n");
        fflush(stdout);
    }
    printf("# max_rss_kib %ld\n", peak_rss_kib());
    return 0;
}
