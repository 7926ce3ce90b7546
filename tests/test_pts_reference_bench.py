"""bench/pts_reference.py's pieces against synthetic processes whose p(correct | prefix) is exact.

The bench scores PTS on a real model against an exhaustive rollout reference; here the reference, the scoring
and the peer's algorithm are checked where the truth is known.
"""

from __future__ import annotations

import sys
from pathlib import Path

from phi4_recipes.pts import PTSConfig
from phi4_recipes.pts.reference.synthetic import VOCAB_SIZE, make_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import pts_reference  # noqa: E402


def _chosen(task) -> pts_reference.Chosen:
    sampler = task.sampler()
    return pts_reference.Chosen("q", 0, task.query_ids, task.response_ids, task.oracle(), task.seed,
                                sampler.token_logprobs(task.query_ids, task.response_ids))


def test_reference_estimates_only_tokens_that_can_move_p_and_finds_the_exact_pivots():
    task = make_task("sharp_pivot", seed=3)
    chosen = _chosen(task)
    spent = pts_reference.estimate_reference(chosen, task.sampler(), [], 256, 0.2)
    exact = task.prefix_probabilities()
    # Tokens that cannot move p by 0.2 (headroom 1 - pi < 0.2) are never estimated.
    possible = pts_reference.possible_pivots(chosen, 0.2)
    assert len(possible) < len(task.response_ids)
    assert spent == 256 * len(chosen.reference)
    for position, (successes, trials) in chosen.reference.items():
        assert abs(successes / trials - exact[position]) < 0.12
    # The exact truth only ever has pivots the headroom bound allows.
    assert set(task.true_pivots(0.2)) <= set(possible)
    found = {("q", 0): task.true_pivots(0.2)}
    scored = pts_reference.score("truth", found, 1, [chosen], {"q"}, 0.2)
    assert scored["precision_tolerant"] == 1.0 and scored["recall_tolerant"] == 1.0


def test_score_counts_a_low_headroom_token_as_false_and_a_missed_pivot_against_recall():
    task = make_task("sharp_pivot", seed=3)
    chosen = _chosen(task)
    pts_reference.estimate_reference(chosen, task.sampler(), [], 256, 0.2)
    true = task.true_pivots(0.2)
    impossible = next(i for i in range(len(task.response_ids)) if i not in pts_reference.possible_pivots(chosen, 0.2))
    scored = pts_reference.score("wrong", {("q", 0): [impossible]}, 100, [chosen], {"q"}, 0.2)
    assert scored["precision_strict"] == 0.0 and scored["recall_strict"] == 0.0
    assert scored["reference_pivots"] == len(true) and len(scored["missed"]) == len(true)
    assert scored["rollouts_per_real_pivot"] is None and scored["false_pivots"][0]["headroom"] < 0.2
    # A question out of band by the reference takes no part in recall.
    assert pts_reference.score("none", {}, 0, [chosen], set(), 0.2)["reference_pivots"] == 0


def test_peer_algorithm_bisects_with_fixed_samples_and_finds_a_rejected_token():
    task = make_task("sharp_pivot", seed=3)
    chosen = _chosen(task)
    positions, rollouts, pairs = pts_reference.peer_search(
        chosen, task.sampler(logprobs=False), [], lambda query, prefix: list(range(VOCAB_SIZE)), PTSConfig(seed=1))
    assert positions and set(positions) <= set(range(len(task.response_ids)))
    # Every estimate is a fixed 50 rollouts: the filter, the bisection, the rejected-token candidates.
    assert rollouts % pts_reference.PEER_SAMPLES == 0 and rollouts >= 3 * pts_reference.PEER_SAMPLES
    true = set(task.true_pivots(0.2))
    assert true & set(positions)
    assert pairs <= len(positions)
