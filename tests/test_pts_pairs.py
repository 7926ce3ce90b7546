"""Single-token DPO pairs built from pivots, checked against exact probabilities."""

from phi4_recipes.pts import PTSConfig, find_pivotal_tokens
from phi4_recipes.pts.reference.synthetic import make_task


def searched(shape, seed, **config):
    task = make_task(shape, seed)
    result = find_pivotal_tokens(
        task.query_ids, task.response_ids, task.sampler(), task.oracle(), PTSConfig(seed=seed, **config)
    )
    return task, result


def test_pairs_point_the_right_way_under_the_exact_probabilities():
    checked = 0
    for shape, seed in [("sharp_pivot", s) for s in range(200, 206)] + [("several_pivots", s) for s in range(200, 206)]:
        task, result = searched(shape, seed)
        by_position = {p.position: p for p in result.pivots}
        for pair in result.pairs:
            pivot = by_position[pair.position]
            assert pair.prefix_ids == task.response_ids[: pair.position]
            exact = task.process.success_probability
            p_chosen = exact(pair.prefix_ids + [pair.chosen_token_id])
            p_rejected = exact(pair.prefix_ids + [pair.rejected_token_id])
            assert p_chosen - p_rejected >= 0.2, (shape, seed, pair)
            # one side is the response's own token, the other an alternative
            own = task.response_ids[pair.position]
            assert (pair.chosen_token_id == own) == pair.chosen_is_pivot
            assert own in (pair.chosen_token_id, pair.rejected_token_id)
            assert pair.chosen_token_id != pair.rejected_token_id
            assert pair.chosen_is_pivot == (pivot.p_after > pivot.p_before)
            # estimates are kept with their counts
            assert pair.p_chosen - pair.p_rejected >= 0.2
            alternative = (
                (pair.rejected_successes, pair.rejected_trials, pair.p_rejected)
                if pair.chosen_is_pivot
                else (pair.chosen_successes, pair.chosen_trials, pair.p_chosen)
            )
            assert alternative[1] >= 32 and alternative[2] == alternative[0] / alternative[1]
            checked += 1
    assert checked >= 10


def test_most_pivots_get_a_pair_and_pairs_can_be_switched_off():
    pivots = pairs = 0
    for seed in range(200, 206):
        _, result = searched("sharp_pivot", seed)
        pivots += len(result.pivots)
        pairs += len(result.pairs)
        assert result.rollouts_by_stream.get("pair", 0) <= 3 * 32 * len(result.pivots)
    assert pivots == 6 and pairs >= 5
    _, quiet = searched("sharp_pivot", 200, make_pairs=False)
    assert quiet.pivots and not quiet.pairs and "pair" not in quiet.rollouts_by_stream
