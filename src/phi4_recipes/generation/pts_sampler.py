"""The sampler Pivotal Token Search asks for, on top of any `Generator`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .base import Generator
from .types import SamplingParams


class PTSSampler:
    """Adapts a `Generator` to `phi4_recipes.pts`: continuations of query + prefix, as token ids.

    Args:
        generator: any backend.
        params: temperature, top_p, max_new_tokens and stop ids of every sample; `n` and `seed`
            come from each `sample` call.

    `token_logprobs` reports the raw model distribution (temperature 1, no top-p). PTS wants it to be
    the distribution `sample` draws from, so keep the defaults temperature=1.0, top_p=1.0 here.
    """

    def __init__(self, generator: Generator, params: SamplingParams):
        self.generator = generator
        self.params = params

    def sample(self, query_ids: Sequence[int], prefix_ids: Sequence[int], n: int, seed: int) -> list[list[int]]:
        """n continuations of query_ids + prefix_ids; each is the continuation's ids only (prefix excluded)."""
        prompt = [*query_ids, *prefix_ids]
        [completions] = self.generator.generate([prompt], replace(self.params, n=n, seed=seed))
        return [list(c.token_ids) for c in completions]

    def token_logprobs(self, query_ids: Sequence[int], response_ids: Sequence[int]) -> list[float]:
        """log p(response_ids[t] | query_ids + response_ids[:t]) under the raw model, one per response token."""
        return self.generator.token_logprobs(query_ids, response_ids)
