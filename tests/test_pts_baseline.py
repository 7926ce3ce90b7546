"""The report's algorithm as a reference: token-count midpoints, fixed N, no confirmation."""

from phi4_recipes.pts import PTSConfig
from phi4_recipes.pts.reference import find_pivotal_tokens_baseline
from phi4_recipes.pts.reference.synthetic import make_task


def test_baseline_with_large_n_finds_sharp_pivots():
    for seed in range(300, 305):
        task = make_task("sharp_pivot", seed)
        result = find_pivotal_tokens_baseline(
            task.query_ids, task.response_ids, task.sampler(), task.oracle(), 256, PTSConfig(seed=seed)
        )
        assert result.pivot_positions == task.true_pivots(0.2)
        assert result.pairs == [] and not result.used_logprobs


def test_baseline_spends_exactly_n_per_estimated_prefix_at_token_midpoints():
    task = make_task("sharp_pivot", 300)
    n = 32
    result = find_pivotal_tokens_baseline(task.query_ids, task.response_ids, task.sampler(), task.oracle(), n)
    positions = [e.position for e in result.estimates]
    assert all(e.trials == n for e in result.estimates)
    assert result.rollouts == n * len(positions)
    assert 0 in positions and len(task.response_ids) // 2 in positions
    # every estimated prefix is a midpoint of a parent segment on the halving tree of [0, T)
    midpoints, stack = set(), [(0, len(task.response_ids))]
    while stack:
        a, b = stack.pop()
        if b - a > 1:
            m = (a + b) // 2
            midpoints.add(m)
            stack += [(a, m), (m, b)]
    assert set(positions) - {0} <= midpoints


def test_small_n_baseline_reports_false_pivots_somewhere():
    false = 0
    for seed in range(300, 320):
        task = make_task("slow_drift", seed)
        result = find_pivotal_tokens_baseline(
            task.query_ids, task.response_ids, task.sampler(), task.oracle(), 16, PTSConfig(seed=seed)
        )
        false += len(set(result.pivot_positions) - set(task.true_pivots(0.2)))
    assert false > 0


def test_baseline_filters_out_of_range_queries():
    task = make_task("sharp_pivot", 300)
    result = find_pivotal_tokens_baseline(task.query_ids, task.response_ids, task.sampler(), lambda r: True, 16)
    assert result.status == "filtered" and result.rollouts == 16 and result.p_query == 1.0
