"""Responders: the named generators whose answers are paired, each with its own sampling settings.

    responders:
      policy: {backend: vllm, model: outputs/phi4-14b/dpo_pts, temperature: 0.8, samples: 2}
      gpt-4o: {backend: openai, model: gpt-4o, backend_kwargs: {base_url: ..., server_extensions: false}}

A local checkpoint answers through the transformers or vLLM backend, anything else through an
OpenAI-compatible endpoint. Two responders may share a checkpoint (say, two temperatures); it is then
loaded once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from phi4_recipes.generation import BACKENDS, SamplingParams, build_generator
from phi4_recipes.hashing import stable_hash
from phi4_recipes.recipe_checks import RecipeError, from_mapping


@dataclass(frozen=True)
class ResponderSpec:
    """One responder of a judge recipe.

    Args:
        name: how pairs, stats and provenance name it (the recipe's mapping key).
        model: checkpoint folder or Hub id (transformers, vllm), or the endpoint's model id (openai).
        backend: one of generation.BACKENDS.
        tokenizer: tokenizer folder; defaults to `model` for local backends. For openai, giving one makes the
            client apply the chat template locally and send token ids (servers of our own checkpoints).
        backend_kwargs: passed to the backend (base_url, api_key_env, max_concurrency, retry, ...).
        samples: responses per prompt (k).
        temperature, top_p, max_new_tokens: its sampling settings.
        system_prompt: a system message before each prompt, for this responder only.
    """

    name: str
    model: str
    backend: str = "transformers"
    tokenizer: str | None = None
    backend_kwargs: dict[str, Any] = field(default_factory=dict)
    samples: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 512
    system_prompt: str | None = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not one of {BACKENDS}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")

    def settings(self) -> dict[str, Any]:
        """What decides its answers (a resumed run must not change it); not where it runs."""
        return {"model": self.model, "samples": self.samples, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "system_prompt": self.system_prompt}


def parse_responders(mapping: Mapping[str, Any] | None, where: str) -> list[ResponderSpec]:
    """The recipe's `responders:` mapping (name -> settings), in recipe order."""
    if not mapping:
        raise RecipeError(f"{where}: key 'responders' needs at least two named responders")
    specs = [from_mapping(ResponderSpec, settings, f"{where}: responders.{name}", name=str(name))
             for name, settings in mapping.items()]
    if len(specs) < 2:
        raise RecipeError(f"{where}: pairs need at least two responders, got {[s.name for s in specs]}")
    return specs


class Responder:
    """A ResponderSpec with its generator; `respond` is safe to call from several threads."""

    def __init__(self, spec: ResponderSpec, generator, lock: threading.Lock | None):
        self.spec = spec
        self.generator = generator
        # Local engines (transformers, vLLM) are not thread-safe; HTTP clients bound themselves.
        self._lock = lock

    @property
    def name(self) -> str:
        return self.spec.name

    def respond(self, conversations: list[list[dict[str, str]]], seed: int) -> list[list[dict[str, Any]]]:
        """`samples` responses to each conversation: [{"text", "finish_reason"}], in conversation order."""
        spec = self.spec
        system = [{"role": "system", "content": spec.system_prompt}] if spec.system_prompt else []
        params = SamplingParams(n=spec.samples, temperature=spec.temperature, top_p=spec.top_p,
                                max_new_tokens=spec.max_new_tokens, seed=seed,
                                stop_token_ids=_stop_ids(self.generator.tokenizer))
        batch = [system + list(messages) for messages in conversations]
        if self._lock is None:
            results = self.generator.chat(batch, params)
        else:
            with self._lock:
                results = self.generator.chat(batch, params)
        return [[{"text": c.text, "finish_reason": c.finish_reason} for c in completions] for completions in results]


def build_responders(specs: list[ResponderSpec]) -> list[Responder]:
    """Generators for every spec; local responders on the same checkpoint share one model and one lock."""
    from phi4_recipes.model_loading import get_tokenizer

    shared: dict[tuple, tuple[Any, threading.Lock | None]] = {}
    responders = []
    for spec in specs:
        key = (spec.backend, spec.model, spec.tokenizer, repr(sorted(spec.backend_kwargs.items())))
        if key not in shared:
            if spec.backend == "openai":
                tokenizer = get_tokenizer(spec.tokenizer, spec.model) if spec.tokenizer else None
                shared[key] = (build_generator("openai", spec.model, tokenizer, **spec.backend_kwargs), None)
            else:
                tokenizer = get_tokenizer(spec.tokenizer, spec.model)
                generator = build_generator(spec.backend, spec.model, tokenizer, **spec.backend_kwargs)
                shared[key] = (generator, threading.Lock())
        responders.append(Responder(spec, *shared[key]))
    return responders


def close_responders(responders: list[Responder]) -> None:
    for generator in {id(r.generator): r.generator for r in responders}.values():
        generator.close()


def batch_seed(run_seed: int, responder: str, first_prompt_id: str) -> int:
    """The seed of one responder's call on one batch: fixed by the batch, so a rerun samples the same."""
    return stable_hash(f"judge-responses:{run_seed}:{responder}:{first_prompt_id}") % (1 << 63)


def _stop_ids(tokenizer) -> tuple[int, ...]:
    # The tokenizer module's one stop rule: the template's own end of turn, the eos, the document separator.
    if tokenizer is None:
        return ()
    from phi4_recipes.tokenizer import stop_token_ids

    return tuple(stop_token_ids(tokenizer))
