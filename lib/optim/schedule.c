/* schedule.c - learning-rate schedules: constant, step, exponential and
 * cosine decay, each after an optional linear warmup. Pure functions of the
 * step number (torch's closed forms), so an optimizer only stores the
 * schedule and its step count; attaching is in optim.c. */
#include "optim_internal.h"

/* C11 has no M_PI. */
#define PI 3.14159265358979323846

tg_schedule tg_schedule_constant(double base_lr)
{
    return (tg_schedule){.kind = TG_SCHED_CONSTANT, .base_lr = base_lr};
}

tg_schedule tg_schedule_step(double base_lr, int64_t step_size, double gamma)
{
    return (tg_schedule){.kind = TG_SCHED_STEP, .base_lr = base_lr, .step_size = step_size,
                         .gamma = gamma};
}

tg_schedule tg_schedule_exponential(double base_lr, double gamma)
{
    return (tg_schedule){.kind = TG_SCHED_EXPONENTIAL, .base_lr = base_lr, .gamma = gamma};
}

tg_schedule tg_schedule_cosine(double base_lr, int64_t t_max, double eta_min)
{
    return (tg_schedule){.kind = TG_SCHED_COSINE, .base_lr = base_lr, .t_max = t_max,
                         .eta_min = eta_min};
}

tg_status tg__schedule_check(const char *fn, const tg_schedule *s)
{
    if (!s)
        return tg__fail(TG_EINVAL, "%s: schedule is NULL", fn);
    if (!tg__nonneg_finite(s->base_lr))
        return tg__fail(TG_EINVAL, "%s: base_lr %g must be >= 0 and finite", fn, s->base_lr);
    if (s->warmup_steps < 0)
        return tg__fail(TG_EINVAL, "%s: warmup_steps %lld is negative", fn,
                        (long long)s->warmup_steps);
    switch (s->kind) {
    case TG_SCHED_CONSTANT:
        return TG_OK;
    case TG_SCHED_STEP:
    case TG_SCHED_EXPONENTIAL:
        if (s->kind == TG_SCHED_STEP && s->step_size <= 0)
            return tg__fail(TG_EINVAL, "%s: step_size %lld must be > 0", fn,
                            (long long)s->step_size);
        if (!tg__nonneg_finite(s->gamma))
            return tg__fail(TG_EINVAL, "%s: gamma %g must be >= 0 and finite", fn, s->gamma);
        return TG_OK;
    case TG_SCHED_COSINE:
        if (s->t_max <= 0)
            return tg__fail(TG_EINVAL, "%s: t_max %lld must be > 0", fn, (long long)s->t_max);
        if (!tg__nonneg_finite(s->eta_min))
            return tg__fail(TG_EINVAL, "%s: eta_min %g must be >= 0 and finite", fn,
                            s->eta_min);
        return TG_OK;
    }
    return tg__fail(TG_EINVAL, "%s: unknown schedule kind %d", fn, (int)s->kind);
}

double tg__schedule_eval(const tg_schedule *s, int64_t step)
{
    // (s + 1) / W rather than s / W: a first step at lr 0 would be wasted.
    if (step < s->warmup_steps)
        return s->base_lr * (double)(step + 1) / (double)s->warmup_steps;
    step -= s->warmup_steps;
    switch (s->kind) {
    case TG_SCHED_CONSTANT:
        break;
    case TG_SCHED_STEP:
        return s->base_lr * pow(s->gamma, (double)(step / s->step_size));
    case TG_SCHED_EXPONENTIAL:
        return s->base_lr * pow(s->gamma, (double)step);
    case TG_SCHED_COSINE:
        // torch's closed form would rise again after t_max (cos is periodic);
        // holding eta_min is what a run longer than t_max wants.
        if (step >= s->t_max)
            return s->eta_min;
        return s->eta_min + (s->base_lr - s->eta_min) *
                                (1 + cos(PI * (double)step / (double)s->t_max)) / 2;
    }
    return s->base_lr;
}

double tg_schedule_lr(const tg_schedule *sched, int64_t step)
{
    if (tg__schedule_check("tg_schedule_lr", sched) != TG_OK)
        return NAN;
    if (step < 0) {
        tg__fail(TG_EINVAL, "tg_schedule_lr: step %lld is negative", (long long)step);
        return NAN;
    }
    return tg__schedule_eval(sched, step);
}
