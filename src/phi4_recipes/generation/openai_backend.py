"""`Generator` over any OpenAI-compatible server: vLLM, `transformers serve`, this package's server, hosted APIs.

Token-id prompts go to /v1/completions with vLLM's `return_token_ids`, so nothing is re-tokenised on
either side. Without a local tokenizer, `chat` sends messages to /v1/chat/completions instead (the
path for hosted APIs, whose answers may carry no token ids: `Completion.token_ids` is then empty).
The API key is read from the environment at each request and is never stored, printed or raised.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from phi4_recipes.recipe_checks import from_mapping

from .base import Generator, Messages, decode_completion_text
from .http_retry import RequestFailed, RetryPolicy, post_json
from .types import Completion, SamplingParams, prompt_seed


class OpenAIGenerator(Generator):
    """Samples through an OpenAI-compatible HTTP API.

    Args:
        model: the server's model id (the `model` field of each request).
        tokenizer: optional; when given, text is decoded locally from the returned ids and `chat` applies
            the chat template locally and sends ids.
        base_url: e.g. "http://127.0.0.1:8000/v1".
        api_key_env: name of the environment variable holding the key (not the key itself).
        max_concurrency: most requests in flight at once, across all threads using this generator.
        retry: a `RetryPolicy`, or a mapping of its fields (as a recipe's `backend_kwargs` gives it).
        server_extensions: send vLLM's extra fields (return_token_ids, stop_token_ids, ignore_eos,
            skip_special_tokens). Turn off for hosted APIs, which reject unknown fields.
        extra_body: merged into every request body (provider-specific options).
    """

    def __init__(
        self,
        model: str,
        tokenizer=None,
        *,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        server_extensions: bool = True,
        extra_body: dict | None = None,
    ):
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.model = model
        self.tokenizer = tokenizer
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.server_extensions = server_extensions
        self.extra_body = dict(extra_body or {})
        self.retry_policy = retry if isinstance(retry, RetryPolicy) else from_mapping(RetryPolicy, retry or {}, "retry")
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="openai-generator")
        self._jitter = random.Random()

    def __repr__(self) -> str:
        return f"OpenAIGenerator(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        payloads = [
            {**self._sampling_fields(params, prompt_seed(params.seed, i)), "prompt": [int(t) for t in prompt],
             "logprobs": 1}
            for i, prompt in enumerate(prompts)
        ]
        responses = self._post_all("/completions", payloads)
        return [self._parse_completions(response, params.n) for response in responses]

    def chat(self, messages_batch: Sequence[Messages], params: SamplingParams) -> list[list[Completion]]:
        if self.tokenizer is not None:
            return super().chat(messages_batch, params)
        payloads = [
            {**self._sampling_fields(params, prompt_seed(params.seed, i)), "messages": list(messages),
             "logprobs": True}
            for i, messages in enumerate(messages_batch)
        ]
        responses = self._post_all("/chat/completions", payloads)
        return [self._parse_chat(response, params.n) for response in responses]

    def token_logprobs(self, prompt_ids: Sequence[int], continuation_ids: Sequence[int]) -> list[float]:
        if len(continuation_ids) == 0:
            return []
        ids = [int(t) for t in [*prompt_ids, *continuation_ids]]
        # OpenAI's legacy echo: the answer's logprobs cover the prompt too (None for its first token).
        payload = {"model": self.model, "prompt": ids, "echo": True, "logprobs": 1, "max_tokens": 1,
                   "temperature": 0.0, **self.extra_body}
        [response] = self._post_all("/completions", [payload])
        token_logprobs = (response["choices"][0].get("logprobs") or {}).get("token_logprobs") or []
        wanted = token_logprobs[len(prompt_ids) : len(ids)]
        if len(wanted) != len(continuation_ids) or any(lp is None for lp in wanted):
            # Some servers (`transformers serve`, hosted chat APIs) ignore echo or logprobs and answer anyway;
            # a silent short list would hand PTS wrong probabilities, so this names what the server lacks.
            raise RequestFailed(
                f"{self.base_url}/completions returned {len(token_logprobs)} log-probs for a {len(ids)}-token "
                "prompt with echo=true, logprobs=1; token log-probs need a server that echoes the prompt's "
                "log-probs (vLLM does)", status=200, attempts=1)
        return [float(lp) for lp in wanted]

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _sampling_fields(self, params: SamplingParams, seed: int) -> dict:
        fields = {"model": self.model, "n": params.n, "temperature": params.temperature, "top_p": params.top_p,
                  "max_tokens": params.max_new_tokens, "seed": seed}
        if self.server_extensions:
            fields.update(return_token_ids=True, ignore_eos=params.ignore_eos, skip_special_tokens=False,
                          stop_token_ids=list(params.stop_token_ids))
        return {**fields, **self.extra_body}

    def _post_all(self, route: str, payloads: list[dict]) -> list[dict]:
        """POST each payload (bounded by max_concurrency) and return the answers in payload order."""
        return list(self._pool.map(lambda payload: self._post(route, payload), payloads))

    def _post(self, route: str, payload: dict) -> dict:
        api_key = os.environ.get(self.api_key_env, "")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        with self._slots:
            return post_json(self.base_url + route, payload, headers, self.retry_policy, self._jitter,
                             redact=[api_key])

    def _parse_completions(self, response: dict, n: int) -> list[Completion]:
        choices = sorted(response["choices"], key=lambda c: c["index"])
        _check_count(choices, n)
        completions = []
        for choice in choices:
            if choice.get("token_ids") is None:
                raise RequestFailed(
                    f"{self.base_url}/completions returned no token ids; the server must support vLLM's "
                    "return_token_ids (vLLM) with server_extensions=True",
                    status=200, attempts=1,
                )
            ids = [int(t) for t in choice["token_ids"]]
            finish = _finish_reason(choice.get("finish_reason"))
            logprobs = (choice.get("logprobs") or {}).get("token_logprobs") or []
            text = decode_completion_text(self.tokenizer, ids, finish) if self.tokenizer else choice["text"]
            completions.append(Completion(ids, text, [float(lp) for lp in logprobs], finish))
        return completions

    def _parse_chat(self, response: dict, n: int) -> list[Completion]:
        choices = sorted(response["choices"], key=lambda c: c["index"])
        _check_count(choices, n)
        completions = []
        for choice in choices:
            content = (choice.get("logprobs") or {}).get("content") or []
            completions.append(Completion(
                token_ids=[int(t) for t in choice.get("token_ids") or []],
                text=choice["message"].get("content") or "",
                logprobs=[float(item["logprob"]) for item in content],
                finish_reason=_finish_reason(choice.get("finish_reason")),
            ))
        return completions


def _check_count(choices: list[dict], n: int) -> None:
    if len(choices) != n:
        raise RequestFailed(f"asked for n={n} choices, the server returned {len(choices)}", status=200, attempts=1)


def _finish_reason(reason: str | None) -> str:
    # Servers also say "eos_token" / "stop_sequence" / "abort"; all of them mean the model stopped itself.
    return "length" if reason == "length" else "stop"
