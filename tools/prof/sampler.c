/* sampler.c - a sampling profiler for machines where perf cannot open its
 * events (a VM without a PMU, or perf_event_paranoid set high): loaded with
 * LD_PRELOAD, it takes the interrupted program counter on a wall-clock timer
 * (SAMPLER_US microseconds, default 200) and at exit writes one line per
 * sample, "object offset", to SAMPLER_OUT (default samples.txt). report.py
 * turns those into a table of functions. tools/prof/profile.sh does both.
 *
 * A wall-clock hrtimer, not ITIMER_PROF, because the CPU-time timers fire at
 * the kernel's tick (4 ms here), too coarse for a two-second epoch. So the
 * shares are wall time: run the program on one thread, on a quiet machine,
 * and read shares, not absolute times (each signal costs some microseconds).
 * The signal goes to any thread of the process; with several threads the
 * samples mix them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#define MAX_SAMPLES (1 << 22)

static void *samples[MAX_SAMPLES];
static long n_samples;

static void on_tick(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)info;
    const ucontext_t *uc = context;
    long i = __atomic_fetch_add(&n_samples, 1, __ATOMIC_RELAXED);
    if (i < MAX_SAMPLES)
        samples[i] = (void *)uc->uc_mcontext.gregs[REG_RIP];
}

static void write_samples(void)
{
    signal(SIGPROF, SIG_IGN);
    const char *path = getenv("SAMPLER_OUT");
    FILE *f = fopen(path && *path ? path : "samples.txt", "w");
    if (!f) {
        perror("sampler: SAMPLER_OUT");
        return;
    }
    long n = n_samples < MAX_SAMPLES ? n_samples : MAX_SAMPLES;
    for (long i = 0; i < n; i++) {
        Dl_info where;
        if (dladdr(samples[i], &where) && where.dli_fname && *where.dli_fname)
            fprintf(f, "%s %lx\n", where.dli_fname,
                    (unsigned long)((char *)samples[i] - (char *)where.dli_fbase));
        else
            fprintf(f, "? %lx\n", (unsigned long)samples[i]);
    }
    fclose(f);
}

__attribute__((constructor)) static void start_sampling(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_tick;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGPROF, &sa, NULL);
    const char *us = getenv("SAMPLER_US");
    long period_ns = (us && atol(us) > 0 ? atol(us) : 200) * 1000;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGPROF};
    struct itimerspec every = {{period_ns / 1000000000, period_ns % 1000000000},
                               {period_ns / 1000000000, period_ns % 1000000000}};
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0 || timer_settime(timer, 0, &every, NULL) != 0) {
        perror("sampler: timer");
        return;
    }
    atexit(write_samples);
}
