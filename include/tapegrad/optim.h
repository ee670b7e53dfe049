/* optim.h - optimizers (SGD, Adam, AdamW, RMSprop), learning-rate schedules
 * and gradient clipping.
 *
 * An optimizer updates caller-owned parameter tensors in place from their
 * gradients (tg_tensor_grad). It never touches the tape:
 *
 *     tg_adam_opts o = tg_adam_defaults();
 *     o.lr = 3e-4;
 *     tg_optim *opt = tg_optim_adam(params, n, &o);
 *     for (step...) {
 *         tg_tensor *loss = model(x, params);
 *         tg_backward(loss);              // fills the grads
 *         tg_optim_step(opt);             // params -= update(grads)
 *         tg_optim_zero_grad(opt);        // grads = 0, ready to accumulate again
 *         tg_tape_reset(tape);
 *     }
 *     tg_optim_free(opt);
 *
 * Update rules follow torch.optim (SGD, Adam, AdamW, RMSprop) element for
 * element, including the per-parameter step counts: a parameter whose grad is
 * NULL at a step is skipped and its state and step count do not move. Adam
 * and AdamW can also use the Keras/TensorFlow form of the update
 * (TG_ADAM_KERAS), which gives different numbers; see docs/optimizers.md.
 *
 * Ownership:
 *   - The params array is copied; the tensors themselves are borrowed and must
 *     outlive the optimizer. They must be caller-owned leaves (not tape
 *     tensors) that require grad, float32 or float64; dtypes may be mixed.
 *   - All state is allocated once, by the constructor, in one block, in each
 *     parameter's dtype. tg_optim_step allocates nothing.
 *   - State tensors returned by tg_optim_state are borrowed: valid until
 *     tg_optim_free, writable (to restore a checkpoint), never to be freed.
 *
 * Errors follow status.h: constructors return NULL, other calls a tg_status,
 * with the reason (naming the function and the value) in tg_last_error().
 */
#ifndef TAPEGRAD_OPTIM_H
#define TAPEGRAD_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_optim tg_optim;

/* ---- SGD -------------------------------------------------------------------
 * torch.optim.SGD, for each parameter p with gradient g:
 *     g = g + weight_decay * p
 *     if momentum != 0:
 *         buf = g                                  (first step of p)
 *         buf = momentum * buf + (1 - dampening) * g   (later steps)
 *         g = nesterov ? g + momentum * buf : buf
 *     p = p - lr * g
 * State: "momentum_buffer" (only when momentum != 0), "step". */
typedef struct tg_sgd_opts {
    double lr;           /* learning rate, >= 0 (default 0.01) */
    double momentum;     /* >= 0 (default 0) */
    double dampening;    /* default 0 */
    double weight_decay; /* L2 penalty added to the gradient, >= 0 (default 0) */
    bool nesterov;       /* needs momentum > 0 and dampening == 0 (default false) */
} tg_sgd_opts;

/* lr 0.01, momentum 0, dampening 0, weight_decay 0, nesterov false (PyTorch's). */
TG_API tg_sgd_opts tg_sgd_defaults(void);

/* An SGD optimizer over params[0..n). opts NULL means tg_sgd_defaults().
 * Returns an owned handle (tg_optim_free), or NULL with
 *   TG_EINVAL: params NULL, n <= 0, a NULL param, a param that does not
 *              require grad, a tape-owned param, the same param twice,
 *              lr/momentum/weight_decay negative or not finite, nesterov with
 *              momentum 0 or dampening != 0;
 *   TG_ENOMEM. */
TG_API tg_optim *tg_optim_sgd(tg_tensor *const *params, int n, const tg_sgd_opts *opts);

/* ---- Adam and AdamW ----------------------------------------------------------
 * Both forms keep m ("exp_avg") and v ("exp_avg_sq") per element; t is the
 * parameter's step count, starting at 1:
 *     m = beta1 * m + (1 - beta1) * g
 *     v = beta2 * v + (1 - beta2) * g^2
 *
 * TG_ADAM_PYTORCH (torch.optim.Adam; Algorithm 1 of Kingma & Ba):
 *     p = p - lr * m_hat / (sqrt(v_hat) + eps),
 *         m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
 * TG_ADAM_KERAS (keras.optimizers.Adam, tf.keras; "epsilon hat" of section 2
 * of the paper):
 *     lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *     p = p - lr_t * m / (sqrt(v) + eps)
 * The forms agree when eps is 0 and give different numbers otherwise: Keras's
 * eps is added to the uncorrected sqrt(v), so in the PyTorch form's terms it
 * is 1/sqrt(1 - beta2^t) times larger (31.6x at t = 1 with beta2 0.999),
 * which matters in early steps and for gradients near eps. Keras's default
 * eps is also 1e-7, not 1e-8 (tg_adam_keras_defaults).
 *
 * weight_decay:
 *   tg_optim_adam:  L2, added to the gradient first (g = g + wd * p), as
 *                   torch.optim.Adam does.
 *   tg_optim_adamw: decoupled, applied before the Adam step:
 *                   p = p - lr * wd * p (torch.optim.AdamW; also what Keras's
 *                   AdamW does, so use tg_optim_adamw with TG_ADAM_KERAS for
 *                   Keras's weight_decay).
 * State: "exp_avg", "exp_avg_sq", "step". */
typedef enum tg_adam_form {
    TG_ADAM_PYTORCH = 0, /* bias-corrected m_hat, v_hat; eps added to sqrt(v_hat) */
    TG_ADAM_KERAS = 1,   /* bias correction folded into lr_t; eps added to sqrt(v) */
} tg_adam_form;

typedef struct tg_adam_opts {
    double lr;           /* >= 0 (default 1e-3) */
    double beta1;        /* in [0, 1) (default 0.9) */
    double beta2;        /* in [0, 1) (default 0.999) */
    double eps;          /* > 0 (default 1e-8; 1e-7 in tg_adam_keras_defaults) */
    double weight_decay; /* >= 0 (default 0 for Adam, 1e-2 for AdamW) */
    tg_adam_form form;   /* default TG_ADAM_PYTORCH */
} tg_adam_opts;

/* lr 1e-3, betas 0.9/0.999, eps 1e-8, weight_decay 0, TG_ADAM_PYTORCH. */
TG_API tg_adam_opts tg_adam_defaults(void);
/* The same with weight_decay 1e-2 (torch.optim.AdamW's defaults). */
TG_API tg_adam_opts tg_adamw_defaults(void);
/* Keras's Adam: lr 1e-3, betas 0.9/0.999, eps 1e-7, weight_decay 0,
 * TG_ADAM_KERAS. */
TG_API tg_adam_opts tg_adam_keras_defaults(void);

/* Adam (L2 weight decay). opts NULL means tg_adam_defaults(). NULL on
 * failure: the parameter errors of tg_optim_sgd, and TG_EINVAL for lr or
 * weight_decay negative or not finite, a beta outside [0, 1), eps <= 0 or not
 * finite, an unknown form; TG_ENOMEM. */
TG_API tg_optim *tg_optim_adam(tg_tensor *const *params, int n, const tg_adam_opts *opts);
/* AdamW (decoupled weight decay). opts NULL means tg_adamw_defaults(). Errors
 * as tg_optim_adam. */
TG_API tg_optim *tg_optim_adamw(tg_tensor *const *params, int n, const tg_adam_opts *opts);

/* ---- RMSprop -----------------------------------------------------------------
 * torch.optim.RMSprop:
 *     g = g + weight_decay * p
 *     sq = alpha * sq + (1 - alpha) * g^2                      ("square_avg")
 *     centered: ga = alpha * ga + (1 - alpha) * g               ("grad_avg")
 *               d = sqrt(sq - ga^2) + eps
 *     else:     d = sqrt(sq) + eps
 *     momentum > 0: buf = momentum * buf + g / d; p = p - lr * buf
 *     else:         p = p - lr * g / d
 * eps is added outside the square root (Keras's RMSprop adds it inside).
 * State: "square_avg", "momentum_buffer" (momentum > 0), "grad_avg"
 * (centered), "step". */
typedef struct tg_rmsprop_opts {
    double lr;           /* >= 0 (default 1e-2) */
    double alpha;        /* smoothing constant, in [0, 1] (default 0.99) */
    double eps;          /* > 0 (default 1e-8) */
    double weight_decay; /* >= 0 (default 0) */
    double momentum;     /* >= 0 (default 0) */
    bool centered;       /* default false */
} tg_rmsprop_opts;

/* lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered false. */
TG_API tg_rmsprop_opts tg_rmsprop_defaults(void);

/* RMSprop. opts NULL means tg_rmsprop_defaults(). NULL on failure: the
 * parameter errors of tg_optim_sgd, and TG_EINVAL for lr, weight_decay or
 * momentum negative or not finite, alpha outside [0, 1], eps <= 0 or not
 * finite; TG_ENOMEM. */
TG_API tg_optim *tg_optim_rmsprop(tg_tensor *const *params, int n,
                                  const tg_rmsprop_opts *opts);

/* ---- using an optimizer ------------------------------------------------------ */

/* One update of every parameter whose grad is not NULL (the others are
 * skipped, their state untouched). Uses the attached schedule's lr at the
 * current step count if there is one, else the optimizer's lr; then advances
 * the step count by one. Grads are left as they are (see tg_optim_zero_grad).
 * Allocates nothing. TG_EINVAL for NULL opt. */
TG_API tg_status tg_optim_step(tg_optim *opt);

/* Sets every parameter's grad to zero, keeping the buffers (unlike PyTorch's
 * set_to_none default, so the next backward needs no allocation). Params
 * without a grad are skipped. NULL is ignored. */
TG_API void tg_optim_zero_grad(tg_optim *opt);

/* Frees the optimizer and its state (not the params). NULL is ignored. */
TG_API void tg_optim_free(tg_optim *opt);

/* The lr the next tg_optim_step will use: the schedule's value at the current
 * step count when a schedule is attached, else the fixed lr. NaN for NULL. */
TG_API double tg_optim_get_lr(const tg_optim *opt);
/* Sets the fixed lr (>= 0 and finite). TG_EINVAL for NULL or a bad lr,
 * TG_ESTATE while a schedule is attached (detach it first). */
TG_API tg_status tg_optim_set_lr(tg_optim *opt, double lr);

/* "sgd", "adam", "adamw" or "rmsprop" ("?" for NULL). */
TG_API const char *tg_optim_name(const tg_optim *opt);
/* Number of parameters (0 for NULL). */
TG_API int tg_optim_num_params(const tg_optim *opt);
/* Borrowed parameter i, or NULL with TG_ERANGE (TG_EINVAL for NULL opt). */
TG_API tg_tensor *tg_optim_param(const tg_optim *opt, int index);

/* ---- inspectable state (for checkpoints) -------------------------------------
 * The number of completed tg_optim_step calls. It drives the schedule. Each
 * parameter also has its own count, the 0-dim float64 state "step" (it lags
 * behind when the parameter's grad was NULL at some steps); Adam's bias
 * correction uses that one, as in PyTorch. */
TG_API int64_t tg_optim_step_count(const tg_optim *opt);
/* Restores the step count (>= 0), e.g. from a checkpoint. TG_EINVAL otherwise. */
TG_API tg_status tg_optim_set_step_count(tg_optim *opt, int64_t count);

/* The k-th state name of this optimizer ("step", "exp_avg", ...; the same for
 * every parameter), or NULL when k is out of range: a checkpoint writer can
 * loop over k = 0, 1, ... until NULL. */
TG_API const char *tg_optim_state_name(const tg_optim *opt, int k);

/* The state tensor `name` of parameter index: "exp_avg", "exp_avg_sq"
 * (Adam/AdamW), "momentum_buffer" (SGD with momentum, RMSprop with momentum),
 * "square_avg", "grad_avg" (RMSprop, centered) have the parameter's shape and
 * dtype; "step" is a 0-dim float64 count. Borrowed (valid until
 * tg_optim_free; do not free); writing into it (tg_tensor_copy_values)
 * restores state. Buffers start at zero; SGD's momentum buffer is taken from
 * the gradient at the parameter's first step (step 0 means "not yet").
 * NULL with TG_EINVAL (NULL opt or name, or a name this optimizer does not
 * keep: the message lists the valid names) or TG_ERANGE (bad index). */
TG_API tg_tensor *tg_optim_state(tg_optim *opt, int param_index, const char *name);

/* Hyperparameters other than lr, by name, as doubles (flags as 0 or 1):
 *   sgd:          momentum, dampening, weight_decay, nesterov
 *   adam, adamw:  beta1, beta2, eps, weight_decay, form (TG_ADAM_PYTORCH 0,
 *                 TG_ADAM_KERAS 1)
 *   rmsprop:      alpha, eps, weight_decay, momentum, centered
 * tg_optim_hparam_name gives the k-th name, NULL past the last (loop until
 * NULL, like tg_optim_state_name). get: TG_EINVAL for NULL arguments or an
 * unknown name (the message lists the valid ones; *out untouched). set: the
 * same, TG_EINVAL for a value the constructor would refuse, and TG_ESTATE for
 * a change that would add or drop a state buffer (SGD momentum 0 <-> nonzero,
 * RMSprop momentum or centered); nothing changes on failure. */
TG_API const char *tg_optim_hparam_name(const tg_optim *opt, int k);
TG_API tg_status tg_optim_get_hparam(const tg_optim *opt, const char *name, double *out);
TG_API tg_status tg_optim_set_hparam(tg_optim *opt, const char *name, double value);

/* ---- learning-rate schedules -------------------------------------------------
 * A schedule maps a step s = 0, 1, 2, ... (the number of optimizer steps
 * already taken) to a learning rate. With warmup_steps W > 0 the first W
 * steps ramp linearly up to base_lr,
 *     lr(s) = base_lr * (s + 1) / W            for s < W,
 * so step W-1 uses base_lr itself, and the decay below then runs on
 * s' = s - W (it starts fresh after the warmup); with W = 0, s' = s.
 *     CONSTANT      base_lr
 *     STEP          base_lr * gamma^floor(s' / step_size)     (torch StepLR)
 *     EXPONENTIAL   base_lr * gamma^s'                         (torch ExponentialLR)
 *     COSINE        eta_min + (base_lr - eta_min) * (1 + cos(pi * s' / t_max)) / 2
 *                   for s' <= t_max, eta_min after (torch's CosineAnnealingLR
 *                   closed form, except that it does not rise again past t_max)
 * Build one with a constructor below, then set fields such as warmup_steps:
 *     tg_schedule s = tg_schedule_cosine(1e-3, 10000, 1e-5);
 *     s.warmup_steps = 500;
 *     tg_optim_set_schedule(opt, &s); */
typedef enum tg_schedule_kind {
    TG_SCHED_CONSTANT = 0,
    TG_SCHED_STEP,
    TG_SCHED_EXPONENTIAL,
    TG_SCHED_COSINE,
} tg_schedule_kind;

typedef struct tg_schedule {
    tg_schedule_kind kind;
    double base_lr;       /* >= 0 */
    int64_t step_size;    /* STEP: > 0 */
    double gamma;         /* STEP, EXPONENTIAL: >= 0 */
    int64_t t_max;        /* COSINE: > 0 */
    double eta_min;       /* COSINE: >= 0 */
    int64_t warmup_steps; /* >= 0 (0: no warmup) */
} tg_schedule;

/* Constructors: the fields named, warmup_steps 0. They never fail; the values
 * are checked by tg_schedule_lr and tg_optim_set_schedule. */
TG_API tg_schedule tg_schedule_constant(double base_lr);
TG_API tg_schedule tg_schedule_step(double base_lr, int64_t step_size, double gamma);
TG_API tg_schedule tg_schedule_exponential(double base_lr, double gamma);
TG_API tg_schedule tg_schedule_cosine(double base_lr, int64_t t_max, double eta_min);

/* The lr at step s >= 0. NaN with TG_EINVAL for NULL, s < 0 or a schedule
 * whose fields are out of range (the message names the field). */
TG_API double tg_schedule_lr(const tg_schedule *sched, int64_t step);

/* Attaches a copy of sched: from now on tg_optim_step uses
 * tg_schedule_lr(sched, tg_optim_step_count(opt)), i.e. the count before the
 * step; the count advances after the update. Attach before the first step to
 * start the schedule at s = 0 (or tg_optim_set_step_count to move it).
 * sched NULL detaches, leaving the fixed lr at the value the next step would
 * have used. TG_EINVAL for NULL opt or an invalid schedule (nothing changes). */
TG_API tg_status tg_optim_set_schedule(tg_optim *opt, const tg_schedule *sched);

/* True, with a copy of the attached schedule in *out (out may be NULL),
 * when one is attached; false (out untouched) otherwise or for NULL opt. */
TG_API bool tg_optim_get_schedule(const tg_optim *opt, tg_schedule *out);

/* ---- gradient clipping -------------------------------------------------------
 * Both work on any caller's tensors, not only an optimizer's (tg_optim_param
 * lists those). A param whose grad is NULL is skipped; a NULL param is an
 * error. Call them between tg_backward and tg_optim_step. */

/* torch.nn.utils.clip_grad_norm_: total = sqrt(sum of every grad element
 * squared) over all params (accumulated in double, rescaled when the squares
 * would overflow); when max_norm / (total + 1e-6) < 1, every grad is
 * multiplied by that factor. *total_norm_out (may be NULL) receives the total
 * before clipping. Errors (grads and *total_norm_out untouched): TG_EINVAL
 * for params NULL, n <= 0, a NULL param, max_norm negative or NaN;
 * TG_ERANGE when the total is NaN or infinite (PyTorch would scale the grads
 * to NaN or zero; here the step can be skipped instead). */
TG_API tg_status tg_clip_grad_norm(tg_tensor *const *params, int n, double max_norm,
                                   double *total_norm_out);

/* torch.nn.utils.clip_grad_value_: every grad element is clamped to
 * [-clip, clip] (NaN stays NaN). TG_EINVAL for params NULL, n <= 0, a NULL
 * param, clip negative or NaN (nothing is changed). */
TG_API tg_status tg_clip_grad_value(tg_tensor *const *params, int n, double clip);

#ifdef __cplusplus
}
#endif
#endif
