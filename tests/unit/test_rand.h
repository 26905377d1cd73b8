/*
 * test_rand.h - the deterministic random numbers of the kernel tests.
 *
 * splitmix64 from a fixed seed, so that a failing case reproduces; each
 * test binary has its own stream. rnd(lo, hi) is uniform on [lo, hi).
 */
#ifndef TEST_RAND_H
#define TEST_RAND_H

#include <stdint.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static inline uint64_t rnd_u64(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline float rnd(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rnd_u64() >> 11) / 9007199254740992.0);
}

#endif
