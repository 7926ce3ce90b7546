"""What the workflows call to get text from a model: conversations in, reply texts out, seeded per row.

A thin adapter over any ``generation.Generator`` (transformers, vLLM, OpenAI-compatible). The annotator
and critic calls go through it too; when the shared judge client (``phi4_recipes.judge``) lands, this is
the one place to switch.

Each call carries its own seed, derived from the run seed, the row id and the step, and is sent alone (a
batch of one conversation), so a row's replies never depend on which rows shared its batch: a resumed run
writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import replace

from phi4_recipes.generation import Generator, SamplingParams
from phi4_recipes.hashing import stable_hash


class ChatModel:
    """Args:
        generator: any backend.
        name: what provenance calls it (model id or path).
        params: default sampling; ``reply`` overrides n, seed and temperature per call.
        system_prompt: prepended to every conversation when set.
    """

    def __init__(self, generator: Generator, name: str, params: SamplingParams, system_prompt: str | None = None):
        self.generator = generator
        self.name = name
        self.params = params
        self.system_prompt = system_prompt

    def reply(self, user_text: str, *, seed_key: str, n: int = 1, temperature: float | None = None) -> list[str]:
        """``n`` replies to one user message; ``seed_key`` (row id and step) picks the random stream."""
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
        messages.append({"role": "user", "content": user_text})
        params = replace(self.params, n=n, seed=stable_hash(f"{self.params.seed}:{seed_key}") % (1 << 31),
                         temperature=self.params.temperature if temperature is None else temperature)
        [completions] = self.generator.chat([messages], params)
        return [completion.text for completion in completions]
