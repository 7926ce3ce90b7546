"""OpenAI-compatible request parsing and response building for `server.py`, independent of HTTP.

Follows the OpenAI completions / chat-completions shapes plus the vLLM extensions the project's
client relies on: token-id prompts, `stop_token_ids`, `ignore_eos`, and `return_token_ids`
(continuation ids on each choice, prompt ids beside them).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Sequence

from phi4_recipes.generation.base import Generator
from phi4_recipes.generation.types import Completion, SamplingParams


class BadRequest(ValueError):
    """The request body is malformed; answered with HTTP 400 and this message."""


def parse_sampling_params(body: dict) -> SamplingParams:
    """SamplingParams from an OpenAI request body (max_tokens defaults to 16, as OpenAI's does)."""
    if body.get("stop"):
        raise BadRequest("stop strings are not supported; pass stop_token_ids (token ids are the unit here)")
    if body.get("stream"):
        raise BadRequest("streaming is not supported by this server")
    seed = body.get("seed")
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 16
    try:
        return SamplingParams(
            n=int(_field(body, "n", 1)),
            temperature=float(_field(body, "temperature", 1.0)),
            top_p=float(_field(body, "top_p", 1.0)),
            max_new_tokens=int(max_tokens),
            stop_token_ids=tuple(body.get("stop_token_ids") or ()),
            # OpenAI semantics: an unseeded request is not reproducible.
            seed=int(seed) if seed is not None else secrets.randbits(63),
            ignore_eos=bool(body.get("ignore_eos", False)),
        )
    except (TypeError, ValueError) as err:
        raise BadRequest(f"bad sampling parameters: {err}") from err


def parse_completion_prompts(prompt, tokenizer) -> list[list[int]]:
    """Normalise `prompt` (str, list[str], list[int] or list[list[int]]) to a list of id lists."""
    if isinstance(prompt, str):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise BadRequest("prompt must be a non-empty string, list of strings, or token-id list(s)")
    if all(isinstance(t, int) for t in prompt):
        prompt = [prompt]
    prompts = []
    for item in prompt:
        if isinstance(item, str):
            if tokenizer is None:
                raise BadRequest("this server has no tokenizer; send prompts as token ids")
            prompts.append(list(tokenizer.encode(item)))
        elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
            prompts.append(item)
        else:
            raise BadRequest("each prompt must be a string or a non-empty list of token ids")
    return prompts


def completions_response(
    generator: Generator, model_name: str, body: dict, prompts: list[list[int]], params: SamplingParams
) -> dict:
    """Run a /v1/completions request; choices are ordered prompt-major (index = prompt * n + sample)."""
    tokenizer = generator.tokenizer
    results = generator.generate(prompts, params)
    want_logprobs = body.get("logprobs") is not None
    want_ids, echo = bool(body.get("return_token_ids")), bool(body.get("echo"))
    choices = []
    for prompt, completions in zip(prompts, results):
        prompt_lps = [None, *generator.token_logprobs(prompt[:1], prompt[1:])] if echo and want_logprobs else []
        for completion in completions:
            shown_ids = (prompt if echo else []) + completion.token_ids
            text = (_decode(tokenizer, prompt) if echo else "") + completion.text
            choice = {"index": len(choices), "text": text, "finish_reason": completion.finish_reason,
                      "logprobs": None}
            if want_logprobs:
                choice["logprobs"] = {
                    "tokens": [_decode(tokenizer, [t]) for t in shown_ids],
                    "token_logprobs": prompt_lps + completion.logprobs,
                    # Alternatives are not computed: the generator reports the sampled token only.
                    "top_logprobs": None,
                    "text_offset": _text_offsets(tokenizer, shown_ids),
                }
            if want_ids:
                choice["token_ids"] = completion.token_ids
                choice["prompt_token_ids"] = prompt
            choices.append(choice)
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model_name, "choices": choices, "usage": _usage(prompts, results)}


def chat_response(generator: Generator, model_name: str, body: dict, params: SamplingParams) -> dict:
    """Run a /v1/chat/completions request for one conversation (`messages`)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of {role, content}")
    prompt = generator.encode_chat(messages)
    [completions] = generator.generate([prompt], params)
    choices = []
    for index, completion in enumerate(completions):
        choice = {"index": index, "message": {"role": "assistant", "content": completion.text},
                  "finish_reason": completion.finish_reason, "logprobs": None}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": (tok := _decode(generator.tokenizer, [t])), "logprob": lp,
                 "bytes": list(tok.encode()), "top_logprobs": []}
                for t, lp in zip(completion.token_ids, completion.logprobs)
            ]}
        if body.get("return_token_ids"):
            choice["token_ids"] = completion.token_ids
        choices.append(choice)
    response = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name, "choices": choices, "usage": _usage([prompt], [completions])}
    if body.get("return_token_ids"):
        response["prompt_token_ids"] = prompt
    return response


def models_response(model_name: str) -> dict:
    return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "phi4-recipes"}]}


def error_body(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind}}


def _field(body: dict, key: str, default):
    """body[key], or `default` when it is absent or null (OpenAI clients send explicit nulls)."""
    value = body.get(key)
    return default if value is None else value


def _decode(tokenizer, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=False) if tokenizer is not None else ""


def _text_offsets(tokenizer, ids: Sequence[int]) -> list[int]:
    offsets, position = [], 0
    for t in ids:
        offsets.append(position)
        position += len(_decode(tokenizer, [t]))
    return offsets


def _usage(prompts: list[list[int]], results: list[list[Completion]]) -> dict:
    prompt_tokens = sum(len(p) for p in prompts)
    completion_tokens = sum(len(c.token_ids) for cs in results for c in cs)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
