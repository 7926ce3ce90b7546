"""Confidence intervals and seed derivation behind the PTS estimator."""

import random

import pytest

from phi4_recipes.pts.stats import derive_seed, difference_interval, wilson_interval


@pytest.mark.parametrize("successes,trials", [(0, 10), (3, 10), (10, 10), (50, 100), (1, 400)])
def test_wilson_interval_contains_estimate_and_stays_in_unit_range(successes, trials):
    low, high = wilson_interval(successes, trials, 2.0)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_wilson_interval_narrows_with_trials_and_is_uninformative_without_any():
    assert wilson_interval(0, 0, 2.0) == (0.0, 1.0)
    widths = [h - lo for lo, h in (wilson_interval(n // 2, n, 2.0) for n in (16, 64, 256))]
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] == pytest.approx(2 * 2.0 * 0.5 / 16, rel=0.02)  # ~ 2 z sqrt(pq/n) at large n


def test_wilson_interval_coverage_is_near_nominal():
    rng = random.Random(0)
    p, n, z, hits = 0.3, 60, 2.0, 0
    for _ in range(2000):
        successes = sum(rng.random() < p for _ in range(n))
        low, high = wilson_interval(successes, n, z)
        hits += low <= p <= high
    assert 0.93 <= hits / 2000 <= 0.99


def test_difference_interval_brackets_difference_and_shrinks_with_exact_side():
    a, b = (0.3, (0.2, 0.4)), (0.8, (0.7, 0.9))
    low, high = difference_interval(a[0], a[1], b[0], b[1])
    assert low < 0.5 < high
    exact_low, exact_high = difference_interval(a[0], a[1], 1.0, (1.0, 1.0))
    assert exact_low == pytest.approx(0.6) and exact_high == pytest.approx(0.8)


def test_derive_seed_is_stable_distinct_and_order_free():
    assert derive_seed(0, "search", 3, 0) == derive_seed(0, "search", 3, 0)
    seeds = {derive_seed(s, stream, pos, r) for s in range(3) for stream in ("a", "b") for pos in range(5) for r in range(3)}
    assert len(seeds) == 3 * 2 * 5 * 3
    assert all(0 <= s < 2**63 for s in seeds)


def test_derive_seed_values_never_change():
    # Every shard and pair ever written depends on these numbers (blake2b-64 of the key's repr, big-endian,
    # halved); a change here silently gives a resumed run different samples than its first half.
    assert derive_seed(42, "pts-question", "arith-train-73c2e776a5") == 2518133873363243421
    assert derive_seed(0, "responses") == 6075550253158043538
