"""Pivotal Token Search against synthetic processes whose true pivots are known exactly."""

import json
import math

import numpy as np
import pytest

from phi4_recipes.pts import (
    PTSConfig,
    PTSResult,
    RolloutLedger,
    decide_gap,
    find_pivotal_tokens,
    split_point,
)
from phi4_recipes.pts.estimator import SEARCH, estimate_change
from phi4_recipes.pts.reference.synthetic import SHAPES, make_task


def clear_margin(task, p_gap=0.2, margin=0.08):
    """True when no token's exact change lies within ``margin`` of ``p_gap`` (the truth is unambiguous)."""
    deltas = np.abs(np.diff(task.prefix_probabilities()))
    return not np.any((deltas > p_gap - margin) & (deltas < p_gap + margin))


@pytest.mark.parametrize("logprobs", [True, False])
def test_finds_exactly_the_true_sharp_pivots(logprobs):
    for seed in range(100, 110):
        task = make_task("sharp_pivot", seed)
        result = find_pivotal_tokens(
            task.query_ids, task.response_ids, task.sampler(logprobs), task.oracle(), PTSConfig(seed=seed)
        )
        assert result.status == "searched"
        assert result.pivot_positions == task.true_pivots(0.2), seed
        assert result.used_logprobs is logprobs


def test_no_false_pivots_on_any_shape_and_all_pivots_when_monotone():
    found_all = 0
    monotone = 0
    for shape in SHAPES:
        for seed in range(100, 112):
            task = make_task(shape, seed)
            if not clear_margin(task):
                continue
            result = find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), task.oracle(), PTSConfig(seed=seed))
            truth = task.true_pivots(0.2)
            assert set(result.pivot_positions) <= set(truth), (shape, seed)
            deltas = np.diff(task.prefix_probabilities())
            # near-monotone along the response: the report's stop rule can see every pivot
            if np.all(deltas >= -0.01) or np.all(deltas <= 0.01):
                monotone += 1
                found_all += result.pivot_positions == truth
    assert monotone >= 10 and found_all == monotone


def test_same_seed_same_result_and_seed_matters():
    task = make_task("non_monotone", 101)

    def run(seed):
        return find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), task.oracle(), PTSConfig(seed=seed))

    assert run(3).to_dict() == run(3).to_dict()
    assert run(3).to_dict()["estimates"] != run(4).to_dict()["estimates"]


def test_query_filter_stops_after_one_batch_with_the_sampled_responses_counted():
    task = make_task("sharp_pivot", 100)
    config = PTSConfig(seed=0)
    for verdict in (True, False):
        def search(sampled, verdict=verdict):
            return find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), lambda r: verdict, config,
                                       question_verdicts=[verdict] * sampled)
        # The runner's 8 sampled responses and one batch clear the stricter drop interval (z = 2) ...
        result = search(8)
        assert result.status == "filtered" and result.p_query == float(verdict)
        assert result.pivots == [] and result.pairs == []
        assert result.rollouts == config.min_trials
        assert result.estimates[0].trials == config.min_trials + 8
        # ... which one batch alone does not: 16 of 16 puts the lower bound exactly on p_max.
        assert search(0).rollouts == 2 * config.min_trials


class Recorder:
    """Wraps a sampler and an oracle and records what they were shown."""

    def __init__(self, task):
        self.task, self.inner = task, task.sampler()
        self.prefixes, self.judged = [], []

    def sample(self, query_ids, prefix_ids, n, seed):
        assert list(query_ids) == self.task.query_ids
        self.prefixes.append(list(prefix_ids))
        return self.inner.sample(query_ids, prefix_ids, n, seed)

    def token_logprobs(self, query_ids, response_ids):
        return self.inner.token_logprobs(query_ids, response_ids)

    def oracle(self, response_ids):
        self.judged.append(list(response_ids))
        return self.task.oracle()(response_ids)


def test_oracle_sees_only_responses_and_sampler_only_response_prefixes():
    task = make_task("several_pivots", 100)
    recorder = Recorder(task)
    result = find_pivotal_tokens(task.query_ids, task.response_ids, recorder, recorder.oracle, PTSConfig(seed=1))
    assert result.pairs, "expected at least one pair so alternative prefixes are exercised"
    query_tokens = set(task.query_ids)
    assert all(len(r) == len(task.response_ids) and not query_tokens & set(r) for r in recorder.judged)
    for prefix in recorder.prefixes:
        k = len(prefix)
        assert prefix == task.response_ids[:k] or prefix[:-1] == task.response_ids[: k - 1]
    assert result.rollouts == recorder.inner.rollouts == sum(result.rollouts_by_stream.values())


def test_result_round_trips_through_json():
    task = make_task("several_pivots", 103)
    result = find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), task.oracle(), PTSConfig(seed=2))
    data = json.loads(json.dumps(result.to_dict()))
    restored = PTSResult.from_dict(data)
    assert restored.to_dict() == result.to_dict()
    assert restored.pivots == result.pivots and restored.pairs == result.pairs
    assert data["seed"] == 2 and data["config"]["p_gap"] == 0.2
    assert {e["position"] for e in data["estimates"]} >= {0, *result.pivot_positions}


def test_tokens_without_headroom_never_are_true_pivots():
    # The pruning bound: |p(<i) - p(<=i)| <= 1 - pi(t_i), so tokens with headroom < p_gap are safe to skip.
    for shape in SHAPES:
        for seed in range(5):
            task = make_task(shape, seed)
            headroom = 1 - np.exp(task.process.token_logprobs(task.response_ids))
            deltas = np.abs(np.diff(task.prefix_probabilities()))
            assert np.all(deltas <= headroom + 1e-12)


def test_estimates_are_reused_not_resampled():
    task = make_task("sharp_pivot", 104)
    ledger = RolloutLedger(task.query_ids, task.response_ids, task.sampler(), task.oracle(), seed=0, z=1.5)
    first = decide_gap(ledger, 0, 20, SEARCH, 0.2, 16, 64)
    paid = ledger.total_rollouts
    assert paid > 0
    assert decide_gap(ledger, 0, 20, SEARCH, 0.2, 16, 64) == first
    assert ledger.total_rollouts == paid


def test_rollouts_are_credited_to_the_longer_prefixes_they_sample():
    task = make_task("sharp_pivot", 105)
    ledger = RolloutLedger(task.query_ids, task.response_ids, task.sampler(), task.oracle(), seed=0, z=1.5)
    ledger.sample(5, 200, SEARCH)
    assert ledger.tally(5, SEARCH).trials == 200
    counts = [ledger.tally(k, SEARCH).trials for k in range(6, 12)]
    assert counts[0] > 0 and counts == sorted(counts, reverse=True)
    assert ledger.total_rollouts == 200


def test_rollout_seeds_do_not_depend_on_call_order():
    task = make_task("slow_drift", 100)

    def seeds_by_prefix(order):
        recorder = Recorder(task)
        seen = {}
        inner = recorder.sample

        def sample(query_ids, prefix_ids, n, seed):
            seen[len(prefix_ids)] = seed
            return inner(query_ids, prefix_ids, n, seed)

        recorder.sample = sample
        ledger = RolloutLedger(task.query_ids, task.response_ids, recorder, recorder.oracle, seed=7, z=1.5)
        for position in order:
            ledger.sample(position, 4, SEARCH)
        return seen

    assert seeds_by_prefix([3, 30, 12]) == seeds_by_prefix([12, 3, 30])


@pytest.mark.parametrize("with_logprobs", [True, False])
def test_change_estimate_converges_to_exact_change(with_logprobs):
    task = make_task("non_monotone", 106)
    logprobs = task.process.token_logprobs(task.response_ids) if with_logprobs else None
    ledger = RolloutLedger(task.query_ids, task.response_ids, task.sampler(), task.oracle(), 0, 2.0, logprobs)
    p = task.prefix_probabilities()
    pivot = task.true_pivots(0.2)[0]
    for start, end in ((pivot, pivot + 1), (0, 32)):
        ledger.sample(start, 3000, SEARCH)
        ledger.sample(end, 3000, SEARCH) if end < len(p) - 1 else None
        change = estimate_change(ledger, start, end, SEARCH, 2.0)
        assert change.low <= p[end] - p[start] <= change.high
        assert abs(change.diff - (p[end] - p[start])) < 0.05


@pytest.mark.parametrize("with_logprobs", [True, False])
def test_an_unsampled_change_is_undecided_however_small_the_headroom(with_logprobs):
    # A token drawn with probability 0.75 can move p by up to 0.25 >= p_gap. Before any rollout the change
    # interval must reach past +-p_gap, so decide_gap samples instead of ruling the token out unseen.
    logprobs = [math.log(0.75), 0.0] if with_logprobs else None
    ledger = RolloutLedger([1], [5, 6], lambda *a: [], lambda ids: False, 0, 2.0, logprobs)
    change = estimate_change(ledger, 0, 1, SEARCH, 2.0)
    assert change.low <= -0.2 and change.high >= 0.2


def test_split_point_balances_weight():
    assert split_point(list(range(10, 20)), [1.0] * 30) == 15
    weights = [0.0] * 30
    for i, w in ((3, 0.2), (7, 0.2), (8, 0.2), (20, 0.9)):
        weights[i] = w
    # Token 20 alone holds more than half the headroom: the cut isolates it.
    assert split_point([3, 7, 8, 20], weights) == 20
    # Unit weights: two candidates a side, cut right before the right half's first one.
    assert split_point([3, 7, 8, 20], [1.0] * 30) == 8


def test_rejects_bad_inputs():
    task = make_task("sharp_pivot", 100)
    with pytest.raises(ValueError):
        find_pivotal_tokens(task.query_ids, [], task.sampler(), task.oracle())
    with pytest.raises(ValueError):
        PTSConfig(p_min=0.9, p_max=0.1)
    with pytest.raises(KeyError):
        PTSConfig.from_dict({"p_gapp": 0.2})
