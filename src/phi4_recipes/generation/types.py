"""Value types shared by every generation backend: what to sample, and what came back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from phi4_recipes.hashing import stable_hash

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample continuations; the same fields mean the same thing on every backend.

    Args:
        n: continuations per prompt.
        temperature: softmax temperature; 0 means greedy (argmax).
        top_p: nucleus mass kept before sampling (1.0 keeps the whole vocabulary).
        max_new_tokens: hard cap on continuation length, stop token included.
        stop_token_ids: ids that end a continuation; the id that stopped it is kept in `token_ids`.
            The backend's end-of-turn ids (`generation_config.eos_token_id`) are added unless `ignore_eos`.
        seed: seeds prompt `i` of a call with `prompt_seed(seed, i)`; same seed, same samples.
        ignore_eos: do not add the model's eos ids to `stop_token_ids`.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop_token_ids: tuple[int, ...] = ()
    seed: int = 0
    ignore_eos: bool = False

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        # Recipes load lists from YAML; a tuple keeps the dataclass hashable and immutable.
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))


@dataclass
class Completion:
    """One sampled continuation.

    Attributes:
        token_ids: continuation ids (the prompt is not repeated); ends with the stop id when
            `finish_reason == "stop"`.
        text: decoded from `token_ids` without the final stop id ("" when no tokenizer is known).
        logprobs: per token of `token_ids`, log p(token | everything before) under the raw model
            distribution (log_softmax of the logits at temperature 1, before top-p), as PTS and DPO need.
        finish_reason: "stop" (a stop id was produced) or "length" (max_new_tokens reached).
    """

    token_ids: list[int]
    text: str
    logprobs: list[float] = field(default_factory=list)
    finish_reason: FinishReason = "length"


def prompt_seed(seed: int, prompt_index: int) -> int:
    """Seed of the random stream for prompt `prompt_index` of a call seeded with `seed`.

    Prompt 0 uses `seed` itself, so a one-prompt request sent to a server with `seed=prompt_seed(s, i)`
    reproduces prompt `i` of a local batched call seeded with `s`. Other indices hash (seed, index) so
    neighbouring seeds do not share streams. Returns a non-negative 63-bit int.
    """
    if prompt_index == 0:
        return int(seed) % (1 << 63)
    return stable_hash(f"{int(seed)}:{int(prompt_index)}", byteorder="little") % (1 << 63)
