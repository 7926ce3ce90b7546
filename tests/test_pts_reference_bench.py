"""bench/pts_reference.py's pieces against synthetic processes whose p(correct | prefix) is exact.

The bench scores PTS on a real model against an exhaustive rollout reference; here the reference, the scoring
and the peer's algorithm are checked where the truth is known.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
    peer = pts_reference.peer_search(
        chosen, task.sampler(logprobs=False), [], lambda query, prefix: list(range(VOCAB_SIZE)), PTSConfig(seed=1))
    assert peer.positions and set(peer.positions) <= set(range(len(task.response_ids)))
    # Every estimate is a fixed 50 rollouts: the filter and the bisection (`pts run`); the rejected-token candidates
    # (codelion's `pts export`) are counted apart, and are what gives a pair.
    assert peer.rollouts % pts_reference.PEER_SAMPLES == 0 and peer.rollouts >= 3 * pts_reference.PEER_SAMPLES
    assert peer.rejected_search_rollouts % pts_reference.PEER_SAMPLES == 0
    assert (peer.pairs > 0) <= (peer.rejected_search_rollouts > 0) and peer.pairs <= len(peer.positions)
    true = set(task.true_pivots(0.2))
    assert true & set(peer.positions)


def test_a_question_is_in_band_by_its_own_pooled_reference_p_not_by_either_response():
    def response(question: str, index: int, successes: int) -> pts_reference.Chosen:
        return pts_reference.Chosen(question, index, [1], [2], bool, 0, [0.0], {0: (successes, 100)})

    # p(question) estimates 0.15 and 0.27 from two responses: pooled 0.21, in band; 0.10 and 0.25: 0.175, out
    # (the old rule, in band by either response's estimate, took both).
    chosen = [response("a", 0, 15), response("a", 1, 27), response("b", 0, 10), response("b", 1, 25)]
    assert pts_reference.questions_in_band(chosen, 0.2, 0.8) == {"a"}


def test_the_cache_gives_back_the_reference_and_the_peer_and_refuses_other_settings(tmp_path):
    path = tmp_path / "cache.json"
    chosen = pts_reference.Chosen("q", 1, [1], [2, 3], bool, 0, [0.0, -1.0], {0: (3, 8), 1: (5, 8)})
    peer = pts_reference.PeerSearch([1], 150, 50, 1)
    first = pts_reference.MeasurementCache(str(path), {"model": "m", "reference_rollouts": 8})
    assert first.get(chosen) is None
    first.put(chosen, peer)
    first.save()
    again = pts_reference.MeasurementCache(str(path), {"model": "m", "reference_rollouts": 8})
    stored = again.get(chosen)
    assert {int(k): tuple(v) for k, v in stored["reference"].items()} == chosen.reference
    assert pts_reference.PeerSearch(**stored["peer"]) == peer
    with pytest.raises(SystemExit, match="other settings"):
        pts_reference.MeasurementCache(str(path), {"model": "other", "reference_rollouts": 8})


def test_rollouts_per_real_pivot_are_compared_like_for_like():
    def method(name, rollouts, pair_rollouts, true):
        return {"method": name, "pivots": true, "precision_strict": 1.0, "precision_tolerant": 1.0,
                "recall_strict": 1.0, "recall_tolerant": 1.0, "rollouts": rollouts, "true_strict": true,
                "rollouts_per_real_pivot": rollouts / true, "pair_rollouts": pair_rollouts, "pairs": true,
                "rollouts_per_real_pivot_with_pairs": (rollouts + pair_rollouts) / true}

    results = [method("ours", 400, 600, 4), method("peer", 1000, 0, 2)]
    assert pts_reference.ratio(results, "rollouts_per_real_pivot") == 0.2
    assert pts_reference.ratio(results, "rollouts_per_real_pivot_with_pairs") == 0.5
    summary = {"model": "m", "questions": 2, "responses": 4, "questions_in_band_by_reference": 2,
               "reference_rollouts_per_prefix": 8, "reference_rollouts": 64, "p_gap": 0.2, "methods": results,
               "ours_vs_peer_rollouts_per_real_pivot": 0.2, "ours_vs_peer_rollouts_per_real_pivot_with_pairs": 0.5}
    text = pts_reference.markdown(summary)
    assert "| ours | 4 |" in text and "0.2 finding pivots" in text and "0.5 with the pairs" in text
