"""The one LLM-judge client: ArenaHard/SimpleQA grading, DPO pair labelling and LLM-as-annotator calls.

    client = JudgeClient("gpt-4o", base_url="https://api.openai.com/v1", max_concurrency=16)
    reply = client.complete([{"role": "user", "content": "..."}])       # the judge's text
    verdict = parse_choice(reply, ("A", "B", "tie"))                   # see judge.verdicts

Any OpenAI-compatible chat model can judge. The client asks for greedy, seeded replies, so a rerun asks
the same question the same way; 429s, 5xx and time-outs are retried with backoff by the transport
(generation.http_retry). Many threads may call `complete` at once; `max_concurrency` bounds what is in
flight.

lm-eval calls a task's process_results with nothing but the document and the responses, so the eval tasks
read their judge from environment variables that run_eval exports (evaluation.lm_eval_runner.JUDGE_ENV):
see `judge_from_env` and `ask_judge`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from phi4_recipes.generation import RetryPolicy, SamplingParams
from phi4_recipes.generation.openai_backend import OpenAIGenerator

JUDGE_MAX_TOKENS = 1024

Messages = Sequence[Mapping[str, str]]


class JudgeClient:
    """Sends messages to an OpenAI-compatible chat model and returns its reply text.

    Args:
        model: the endpoint's model id (e.g. "gpt-4o").
        base_url: e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8000/v1".
        api_key_env: name of the environment variable holding the key (never the key itself).
        max_concurrency: most requests in flight at once, across all calling threads.
        retry: a `RetryPolicy` or a mapping of its fields.
        max_new_tokens: default reply cap.
        temperature: 0 (greedy) unless a caller wants varied annotations.
        seed: sent with every request, so servers that honour seeds answer a rerun identically.
    """

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY", max_concurrency: int = 8,
                 retry: RetryPolicy | Mapping[str, Any] | None = None, max_new_tokens: int = JUDGE_MAX_TOKENS,
                 temperature: float = 0.0, seed: int = 0):
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        # Hosted judges (GPT-4o, ...) reject vLLM's extra request fields, so they are not sent.
        self._generator = OpenAIGenerator(model, base_url=base_url, api_key_env=api_key_env, retry=retry,
                                          server_extensions=False, max_concurrency=max_concurrency)

    def __repr__(self) -> str:
        return f"JudgeClient(model={self.model!r}, base_url={self._generator.base_url!r})"

    def complete(self, messages: Messages, *, max_new_tokens: int | None = None, seed: int | None = None) -> str:
        """The judge's reply to one conversation (raises generation.RequestFailed when retries run out)."""
        params = SamplingParams(temperature=self.temperature, max_new_tokens=max_new_tokens or self.max_new_tokens,
                                seed=self.seed if seed is None else seed)
        [[reply]] = self._generator.chat([[dict(m) for m in messages]], params)
        return reply.text

    def ask(self, prompt: str, *, system: str | None = None, max_new_tokens: int | None = None) -> str:
        """One reply to a single user prompt (optionally after a system message)."""
        return self.complete(user_messages(prompt, system), max_new_tokens=max_new_tokens)

    def close(self) -> None:
        self._generator.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def user_messages(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


@functools.cache
def _cached_client(model: str, base_url: str, api_key_env: str) -> JudgeClient:
    return JudgeClient(model, base_url, api_key_env=api_key_env, max_concurrency=1)


def judge_from_env() -> JudgeClient:
    """The judge run_eval configured for lm-eval tasks (PHI4_JUDGE_MODEL / PHI4_JUDGE_BASE_URL / ..._API_KEY_ENV)."""
    model, base_url = os.environ.get("PHI4_JUDGE_MODEL"), os.environ.get("PHI4_JUDGE_BASE_URL")
    if not model or not base_url:
        raise RuntimeError("this task is graded by an LLM judge: set judge_model and judge_base_url in the eval "
                           "recipe (or PHI4_JUDGE_MODEL / PHI4_JUDGE_BASE_URL)")
    return _cached_client(model, base_url, os.environ.get("PHI4_JUDGE_API_KEY_ENV", "OPENAI_API_KEY"))


def ask_judge(prompt: str, system: str | None = None, max_new_tokens: int = JUDGE_MAX_TOKENS) -> str:
    """One greedy, seeded reply to `prompt` from the judge configured in the environment."""
    return judge_from_env().ask(prompt, system=system, max_new_tokens=max_new_tokens)
