/* optim_internal.h - the optimizer handle shared by the lib/optim sources. The
 * handle, the params array, the state tensor headers, the algorithm's own
 * options and all state data live in one allocation made by
 * tg__optim_create; each optimizer file adds only its vtable, its option
 * checks and its update kernels. Never installed. */
#ifndef TG_OPTIM_INTERNAL_H
#define TG_OPTIM_INTERNAL_H

#include <math.h>

#include "tapegrad/optim.h"
#include "tg_internal.h"

/* Slot 0 of every parameter's state is "step"; the others hold buffers shaped
 * like the parameter. Four is the most any optimizer here keeps (RMSprop
 * centered with momentum: step, square_avg, momentum_buffer, grad_avg). */
#define TG__OPTIM_MAX_STATE 4

/* What makes an optimizer an optimizer, like a layer's tg__layer_vtable: a
 * new algorithm is one file that defines one of these and a constructor that
 * calls tg__optim_create. Nothing shared switches on the algorithm. */
typedef struct tg__optim_vtable {
    const char *name; /* "sgd", "adam", ... (tg_optim_name) */
    /* One update of every parameter with a grad, at learning rate lr; the
     * common code advances the step count. */
    void (*step)(tg_optim *opt, double lr);
    /* Hyperparameters other than lr, as doubles (flags as 0 or 1), for
     * checkpoints: NULL-terminated names, and the k-th one's value. */
    const char *const *hparams;
    double (*get_hparam)(const tg_optim *opt, int k);
    /* Validates and sets hyperparameter k: TG_EINVAL for a value the
     * constructor would refuse, TG_ESTATE for one that would change which
     * state buffers exist (momentum 0 <-> nonzero); fn prefixes the message.
     * Nothing changes on failure. */
    tg_status (*set_hparam)(tg_optim *opt, int k, double value, const char *fn);
} tg__optim_vtable;

struct tg_optim {
    const tg__optim_vtable *vt;
    int n_params;
    int n_state; /* slots per parameter, including "step" */
    const char *state_names[TG__OPTIM_MAX_STATE];
    tg_tensor **params;  /* n_params, borrowed tensors */
    tg_tensor *state;    /* n_params * n_state headers: param i, slot k at i*n_state+k */
    double lr;           /* fixed lr, used while no schedule is attached */
    int64_t step_count;  /* completed tg_optim_step calls */
    bool has_schedule;
    tg_schedule schedule;
    void *impl;          /* the algorithm's own options and caches, inside the block */
};

/* Checks the params array (non-NULL, n > 0, caller-owned leaves requiring
 * grad, float32/float64, no duplicates). fn prefixes the message. */
tg_status tg__optim_check_params(const char *fn, tg_tensor *const *params, int n);

/* Allocates and initialises the handle for already-checked params: state
 * slot 0 is "step", slots 1..n_buffers are zeroed buffers named
 * buffer_names[0..n_buffers); impl[0..impl_size) is copied into the same
 * block (opt->impl, aligned for any type). NULL with TG_ENOMEM. */
tg_optim *tg__optim_create(const char *fn, const tg__optim_vtable *vt, const void *impl,
                           size_t impl_size, tg_tensor *const *params, int n, int n_buffers,
                           const char *const *buffer_names, double lr);

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

#endif
