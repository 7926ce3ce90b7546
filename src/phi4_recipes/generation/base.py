"""The one interface every sampler in the project talks to (PTS, judge-DPO, synth, eval)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from .types import Completion, SamplingParams

Messages = list[dict[str, str]]


class Generator(ABC):
    """Samples continuations of token-id prompts.

    Token ids are the unit everywhere: prompts go in as ids, continuations come back as ids, and text is
    decoded from those ids. Subclasses implement `generate` and `token_logprobs`; `chat` is shared.
    """

    tokenizer = None

    @abstractmethod
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        """Sample `params.n` continuations of each prompt.

        Args:
            prompts: B prompts, each a non-empty list of token ids.
            params: sampling settings; prompt i is seeded with `prompt_seed(params.seed, i)`.
        Returns:
            B lists of `params.n` completions, in prompt order.
        """

    @abstractmethod
    def token_logprobs(self, prompt_ids: Sequence[int], continuation_ids: Sequence[int]) -> list[float]:
        """log p(continuation_ids[t] | prompt_ids + continuation_ids[:t]) for each t, raw model distribution.

        Returns:
            len(continuation_ids) floats.
        """

    def chat(self, messages_batch: Sequence[Messages], params: SamplingParams) -> list[list[Completion]]:
        """Apply the tokenizer's chat template (with the assistant generation prompt) and `generate`."""
        return self.generate([self.encode_chat(messages) for messages in messages_batch], params)

    def encode_chat(self, messages: Messages) -> list[int]:
        """Prompt ids of a conversation, ending with the assistant header so the model answers next."""
        if self.tokenizer is None:
            raise ValueError(f"{type(self).__name__}.chat needs a tokenizer with a chat template")
        ids = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return [int(t) for t in ids]

    def close(self) -> None:
        """Release engines, threads or sockets the backend holds (nothing, for backends that hold none)."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_completion_text(tokenizer, token_ids: Sequence[int], finish_reason: str) -> str:
    """Text of a continuation: its ids decoded, without the stop id that ended it ("" without a tokenizer)."""
    if tokenizer is None:
        return ""
    ids = list(token_ids[:-1]) if finish_reason == "stop" and token_ids else list(token_ids)
    return tokenizer.decode(ids, skip_special_tokens=False)
