"""The LLM judge that grades SimpleQA and ArenaHard answers, over any OpenAI-compatible endpoint.

run_eval exports the recipe's judge settings as environment variables (see lm_eval_runner.JUDGE_ENV),
because lm-eval calls a task's process_results with nothing but the document and the responses.
"""

from __future__ import annotations

import functools
import os

from phi4_recipes.generation import SamplingParams
from phi4_recipes.generation.openai_backend import OpenAIGenerator

JUDGE_MAX_TOKENS = 1024


@functools.cache
def _judge(model: str, base_url: str, api_key_env: str) -> OpenAIGenerator:
    # Hosted judges (GPT-4o, ...) reject vLLM's extra request fields, so they are not sent.
    return OpenAIGenerator(model, base_url=base_url, api_key_env=api_key_env, server_extensions=False,
                           max_concurrency=1)


def judge_from_env() -> OpenAIGenerator:
    model, base_url = os.environ.get("PHI4_JUDGE_MODEL"), os.environ.get("PHI4_JUDGE_BASE_URL")
    if not model or not base_url:
        raise RuntimeError("this task is graded by an LLM judge: set judge_model and judge_base_url in the eval "
                           "recipe (or PHI4_JUDGE_MODEL / PHI4_JUDGE_BASE_URL)")
    return _judge(model, base_url, os.environ.get("PHI4_JUDGE_API_KEY_ENV", "OPENAI_API_KEY"))


def ask_judge(prompt: str, system: str | None = None, max_new_tokens: int = JUDGE_MAX_TOKENS) -> str:
    """One greedy, seeded judge reply to `prompt`."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    [[reply]] = judge_from_env().chat([messages], SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens))
    return reply.text
