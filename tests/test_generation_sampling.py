"""Token selection from logits, seeds, and the parameter dataclass."""

import pytest
import torch

from phi4_recipes.generation import SamplingParams, prompt_seed
from phi4_recipes.generation.sampling import sample_next_tokens


def _draws(count: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_greedy_picks_argmax_and_reports_raw_logprob():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.9], [3.0, 0.0, 0.0, 0.0]])
    tokens, logprobs = sample_next_tokens(logits, _draws(2), temperature=0.0, top_p=1.0)
    assert tokens.tolist() == [1, 0]
    expected = torch.log_softmax(logits, -1)[[0, 1], [1, 0]]
    torch.testing.assert_close(logprobs, expected)


def test_sampling_frequencies_follow_the_tempered_softmax():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0])
    rows = 20_000
    tokens, _ = sample_next_tokens(logits.expand(rows, -1), _draws(rows), temperature=0.7, top_p=1.0)
    observed = torch.bincount(tokens, minlength=4).double() / rows
    expected = torch.softmax(logits.double() / 0.7, -1)
    # 20k draws: the standard error of each frequency is below 0.004.
    assert torch.allclose(observed, expected, atol=0.015), (observed, expected)


def test_top_p_keeps_the_smallest_nucleus_and_renormalises():
    probs = torch.tensor([0.05, 0.5, 0.3, 0.15])  # nucleus at 0.75 = {1, 2}; 0.5 alone falls short
    logits = probs.log()
    rows = 20_000
    tokens, logprobs = sample_next_tokens(logits.expand(rows, -1), _draws(rows, 1), temperature=1.0, top_p=0.75)
    counts = torch.bincount(tokens, minlength=4)
    assert counts[0] == 0 and counts[3] == 0
    assert abs(counts[1].item() / rows - 0.5 / 0.8) < 0.015
    # Reported log-probs are the model's, not the renormalised nucleus ones.
    torch.testing.assert_close(logprobs, logits.log_softmax(-1)[tokens])


def test_a_uniform_rounded_up_to_one_never_picks_a_zero_mass_token():
    logits = torch.tensor([[0.0, 0.0, -float("inf")], [0.0, -float("inf"), -float("inf")]])
    almost_one = torch.ones(2, dtype=torch.float64)  # what u * total can round to
    tokens, _ = sample_next_tokens(logits, almost_one, temperature=1.0, top_p=1.0)
    assert tokens.tolist() == [1, 0]
    tokens, _ = sample_next_tokens(logits, almost_one, temperature=1.0, top_p=0.9)
    assert tokens.tolist()[1] == 0 and tokens.tolist()[0] in (0, 1)


def test_temperature_changes_the_choice_not_the_reported_logprob():
    logits = torch.tensor([[2.0, 1.0, 0.0]]).expand(4, -1)
    u = torch.tensor([0.1, 0.5, 0.8, 0.95], dtype=torch.float64)
    cold, cold_lp = sample_next_tokens(logits, u, temperature=0.2, top_p=1.0)
    hot, hot_lp = sample_next_tokens(logits, u, temperature=5.0, top_p=1.0)
    assert cold.tolist() != hot.tolist()
    raw = torch.log_softmax(logits[0], -1)
    torch.testing.assert_close(cold_lp, raw[cold])
    torch.testing.assert_close(hot_lp, raw[hot])


def test_prompt_seed_is_the_seed_for_prompt_zero_and_distinct_otherwise():
    assert prompt_seed(7, 0) == 7
    seeds = {prompt_seed(7, i) for i in range(100)} | {prompt_seed(8, i) for i in range(100)}
    assert len(seeds) == 200
    assert prompt_seed(7, 3) == prompt_seed(7, 3)
    assert all(0 <= s < 2**63 for s in seeds)


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_new_tokens": 0}]
)
def test_sampling_params_reject_nonsense(kwargs):
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_sampling_params_store_stop_ids_as_int_tuple():
    params = SamplingParams(stop_token_ids=[5, "7"])
    assert params.stop_token_ids == (5, 7)
    hash(params)
