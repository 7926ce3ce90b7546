"""The sequential question filter, p(question) rollout reuse across responses, and the temperature guard."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from phi4_recipes.pts import PTSConfig, find_pivotal_tokens
from phi4_recipes.pts.config import require_logprobs_of_sampling
from phi4_recipes.pts.reference.synthetic import make_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from pts_filter import near_edge_task  # noqa: E402


def _searched(task, **overrides) -> bool:
    config = PTSConfig(seed=task.seed, make_pairs=False, **overrides)
    return find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), task.oracle(), config).status \
        == "searched"


def test_sequential_filter_keeps_questions_just_inside_the_band():
    tasks = [near_edge_task(p, seed) for seed, p in enumerate([0.21, 0.23, 0.25, 0.27, 0.73, 0.75, 0.77, 0.79] * 3)]
    old = sum(_searched(t, filter_max_trials=64, keep_undecided=False) for t in tasks)
    new = sum(_searched(t) for t in tasks)
    assert new > old and new >= 0.9 * len(tasks), (old, new)


def test_clear_questions_stop_after_one_batch():
    config = PTSConfig(seed=0, make_pairs=False)
    for p in (0.02, 0.98):  # filtered: position 0 holds only the filter's rollouts
        task = near_edge_task(p, 1)
        result = find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), task.oracle(), config)
        assert next(e.trials for e in result.estimates if e.position == 0) <= 2 * config.min_trials


def test_second_response_reuses_the_p_question_rollouts_and_finds_the_same():
    task = make_task("several_pivots", 3, 32)
    other = task.process.sample_response(np.random.default_rng(7))
    config = PTSConfig(seed=11)
    alone = find_pivotal_tokens(task.query_ids, other, task.sampler(), task.oracle(), config)
    draws: dict = {}
    find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), task.oracle(), config, draws=draws)
    shared = find_pivotal_tokens(task.query_ids, other, task.sampler(), task.oracle(), config, draws=draws)
    assert shared.reused_rollouts > 0 and shared.rollouts + shared.reused_rollouts == alone.rollouts
    assert replace(shared, rollouts=0, reused_rollouts=0) == replace(alone, rollouts=0, reused_rollouts=0,
                                                                     rollouts_by_stream=shared.rollouts_by_stream)


def test_logprob_guidance_refuses_another_sampling_distribution():
    require_logprobs_of_sampling(1.0, 1.0, True)
    require_logprobs_of_sampling(0.6, 0.9, False)  # plain rollouts are valid at any temperature
    for temperature, top_p in ((0.6, 1.0), (1.0, 0.9)):
        with pytest.raises(ValueError, match=r"temperature=.*top_p=.*use_logprobs: false"):
            require_logprobs_of_sampling(temperature, top_p, True)
