/* rng.c - xoshiro256** seeded with splitmix64 (both by Blackman and Vigna).
 * Chosen because the integer stream is fixed by the algorithm alone: the same
 * seed gives the same numbers on every platform and compiler. */
#include <math.h>

#include "tg_internal.h"

/* Records the failure for a NULL generator; every draw below checks it. */
static bool missing(const tg_rng *rng, const char *fn)
{
    if (rng)
        return false;
    tg__fail(TG_EINVAL, "%s: rng is NULL", fn);
    return true;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

tg_rng tg_rng_seeded(uint64_t seed)
{
    tg_rng rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = splitmix64(&seed);
    return rng;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tg_rng_next_u64(tg_rng *rng)
{
    if (missing(rng, "tg_rng_next_u64"))
        return 0;
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tg_rng_uniform(tg_rng *rng)
{
    if (missing(rng, "tg_rng_uniform"))
        return NAN;
    return (double)(tg_rng_next_u64(rng) >> 11) * 0x1.0p-53;
}

double tg_rng_normal(tg_rng *rng)
{
    if (missing(rng, "tg_rng_normal"))
        return NAN;
    // Box-Muller with u1 in (0,1] so that log(u1) is finite.
    double u1 = 1.0 - tg_rng_uniform(rng);
    double u2 = tg_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t tg_rng_below(tg_rng *rng, uint64_t n)
{
    if (missing(rng, "tg_rng_below") || n == 0)
        return 0;
    // Rejection keeps every value equally likely: drop the top partial range.
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = tg_rng_next_u64(rng);
    while (x >= limit);
    return x % n;
}
