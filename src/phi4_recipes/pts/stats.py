"""Binomial confidence intervals and seed derivation, in plain Python (no numpy in the core)."""

from __future__ import annotations

import math

from phi4_recipes.hashing import stable_hash


def wilson_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Chosen over the normal interval because it stays inside [0, 1] and keeps a sensible width
    at 0 or n successes, which is where most PTS prefixes live.

    :param successes: number of successful trials.
    :param trials: number of trials; 0 gives the uninformative interval (0, 1).
    :param z: z-score of the two-sided interval.
    :returns: ``(low, high)``.
    """
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2n = z * z / trials
    center = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials))
    return max(0.0, center - half), min(1.0, center + half)


def difference_interval(
    p_a: float, interval_a: tuple[float, float], p_b: float, interval_b: tuple[float, float]
) -> tuple[float, float]:
    """Interval for ``p_b - p_a`` from two independent per-proportion intervals (Newcombe's hybrid).

    :param p_a: point estimate of the first proportion.
    :param interval_a: its ``(low, high)`` interval.
    :param p_b: point estimate of the second proportion.
    :param interval_b: its ``(low, high)`` interval.
    :returns: ``(low, high)`` for the difference ``p_b - p_a``.
    """
    low_a, high_a = interval_a
    low_b, high_b = interval_b
    diff = p_b - p_a
    low = diff - math.hypot(p_b - low_b, high_a - p_a)
    high = diff + math.hypot(high_b - p_b, p_a - low_a)
    return low, high


def derive_seed(seed: int, *key: object) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``key``.

    Rollout seeds are keyed by (stream, position, round) rather than drawn from one running
    generator, so the continuations sampled at a prefix do not depend on which other prefixes
    happened to be sampled before it.

    :param seed: the search seed.
    :param key: anything with a stable ``repr`` (strings, ints, tuples of those).
    :returns: a non-negative int below 2**63.
    """
    return stable_hash(repr((seed, *key)), byteorder="big") >> 1
