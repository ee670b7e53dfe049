/* optim_internal.h - the optimizer handle shared by the lib/optim sources. The
 * handle, the params array, the state tensor headers and all state data live
 * in one allocation made by tg__optim_create; each optimizer file adds only
 * its option checks and its update kernels. Never installed. */
#ifndef TG_OPTIM_INTERNAL_H
#define TG_OPTIM_INTERNAL_H

#include <math.h>

#include "tapegrad/optim.h"
#include "tg_internal.h"

typedef enum tg__optim_kind {
    TG__OPTIM_SGD,
    TG__OPTIM_ADAM,
    TG__OPTIM_ADAMW,
    TG__OPTIM_RMSPROP,
} tg__optim_kind;

/* Slot 0 of every parameter's state is "step"; the others hold buffers shaped
 * like the parameter. Four is the most any optimizer here keeps (RMSprop
 * centered with momentum: step, square_avg, momentum_buffer, grad_avg). */
#define TG__OPTIM_MAX_STATE 4

struct tg_optim {
    tg__optim_kind kind;
    int n_params;
    int n_state; /* slots per parameter, including "step" */
    const char *state_names[TG__OPTIM_MAX_STATE];
    tg_tensor **params;  /* n_params, borrowed tensors */
    tg_tensor *state;    /* n_params * n_state headers: param i, slot k at i*n_state+k */
    double lr;           /* fixed lr, used while no schedule is attached */
    int64_t step_count;  /* completed tg_optim_step calls */
    bool has_schedule;
    tg_schedule schedule;
    union {
        tg_sgd_opts sgd;
        tg_adam_opts adam;
        tg_rmsprop_opts rmsprop;
    } opts;
    /* Adam's beta1^t, beta2^t and bias corrections 1 - beta1^t and
     * sqrt(1 - beta2^t) for the per-parameter step count t = bc_t, reused by
     * every parameter at that count (see adam.c). bc_t -1: none yet. */
    double bc_t, pow1, pow2, bc1, bc2_sqrt;
};

/* Checks the params array (non-NULL, n > 0, caller-owned leaves requiring
 * grad, float32/float64, no duplicates). fn prefixes the message. */
tg_status tg__optim_check_params(const char *fn, tg_tensor *const *params, int n);

/* Allocates and initialises the handle for already-checked params: state
 * slot 0 is "step", slots 1..n_buffers are zeroed buffers named
 * buffer_names[0..n_buffers). NULL with TG_ENOMEM. */
tg_optim *tg__optim_create(const char *fn, tg__optim_kind kind, tg_tensor *const *params,
                           int n, int n_buffers, const char *const *buffer_names, double lr);

/* Data pointer of state slot k of param i (the "step" double for k = 0). */
static inline void *tg__optim_buf(tg_optim *opt, int i, int k)
{
    return opt->state[(size_t)i * (size_t)opt->n_state + (size_t)k].data;
}

/* True when x is a finite value >= 0 (false for NaN). */
static inline bool tg__nonneg_finite(double x) { return x >= 0 && isfinite(x); }

/* Validates a schedule; fn prefixes the message. */
tg_status tg__schedule_check(const char *fn, const tg_schedule *s);
/* The lr of a checked schedule at step >= 0. */
double tg__schedule_eval(const tg_schedule *s, int64_t step);

/* One update of every parameter with a grad, at learning rate lr. */
void tg__sgd_step(tg_optim *opt, double lr);
void tg__adam_step(tg_optim *opt, double lr);
void tg__rmsprop_step(tg_optim *opt, double lr);

#endif
