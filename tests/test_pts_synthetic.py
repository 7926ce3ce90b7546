"""The synthetic processes used to score PTS: exact probabilities must be exact."""

import numpy as np
import pytest

from phi4_recipes.pts.reference.synthetic import SHAPES, VOCAB_SIZE, make_task, true_pivots


@pytest.mark.parametrize("shape", list(SHAPES))
def test_prefix_probability_is_policy_average_of_one_token_extensions(shape):
    task = make_task(shape, 3)
    process, response = task.process, task.response_ids
    for k in (0, 7, len(response) // 2, len(response) - 1):
        prefix = response[:k]
        state = process.state_after(prefix)
        mixture = sum(
            process.policy[k, state, token] * process.success_probability(prefix + [token]) for token in range(VOCAB_SIZE)
        )
        assert process.success_probability(prefix) == pytest.approx(mixture, abs=1e-12)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_exact_probability_matches_monte_carlo(shape):
    task = make_task(shape, 5)
    sampler, oracle = task.sampler(), task.oracle()
    for k in (0, 40):
        prefix = task.response_ids[:k]
        continuations = sampler.sample(task.query_ids, prefix, 4000, seed=k)
        rate = np.mean([oracle(prefix + c) for c in continuations])
        exact = task.process.success_probability(prefix)
        assert abs(rate - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000) + 1e-9


def test_task_is_deterministic_and_in_requested_range():
    a, b = make_task("several_pivots", 11), make_task("several_pivots", 11)
    assert a.response_ids == b.response_ids and a.query_ids == b.query_ids
    assert 0.3 <= a.prefix_probabilities()[0] <= 0.7
    assert len(a.true_pivots(0.2)) >= 2  # the shape's promise
    assert make_task("several_pivots", 12).response_ids != a.response_ids


def test_sampler_is_seeded_and_runs_to_the_end():
    task = make_task("slow_drift", 0)
    sampler = task.sampler()
    first = sampler.sample(task.query_ids, task.response_ids[:10], 8, seed=42)
    assert first == sampler.sample(task.query_ids, task.response_ids[:10], 8, seed=42)
    assert first != sampler.sample(task.query_ids, task.response_ids[:10], 8, seed=43)
    assert all(len(c) == len(task.response_ids) - 10 for c in first)
    assert sampler.rollouts == 24


def test_logprobs_are_the_sampling_distribution():
    task = make_task("sharp_pivot", 2)
    logprobs = task.sampler(logprobs=True).token_logprobs(task.query_ids, task.response_ids)
    process, state = task.process, task.process.start_state
    for t, (token, lp) in enumerate(zip(task.response_ids, logprobs)):
        assert lp == pytest.approx(np.log(process.policy[t, state, token]))
        state = process.transition[t, state, token]
    assert not hasattr(task.sampler(logprobs=False), "token_logprobs")


def test_true_pivots_follow_the_definition():
    task = make_task("non_monotone", 4)
    p = task.prefix_probabilities()
    expected = [i for i in range(len(task.response_ids)) if abs(p[i + 1] - p[i]) >= 0.2]
    assert true_pivots(task.process, task.response_ids, 0.2) == expected == task.true_pivots(0.2)
    assert expected  # the shape guarantees a fall and a climb


def test_oracle_rejects_incomplete_responses():
    task = make_task("sharp_pivot", 0)
    with pytest.raises(ValueError):
        task.oracle()(task.response_ids[:-1])
