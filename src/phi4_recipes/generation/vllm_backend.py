"""`Generator` over vLLM's offline engine (extra `vllm`, needs a CUDA GPU).

Prompts are passed as token ids (nothing is re-tokenised), automatic prefix caching is on (the n
samples of a prompt, and PTS prefixes of one question, share KV blocks), and log-probs are vLLM's
raw ones (`logprobs_mode="raw_logprobs"`: before temperature and top-p), matching the transformers
backend. vLLM is imported on first use only, so the rest of the package works without it.

A process builds one engine per engine settings and keeps it until it exits (:func:`shared_engine`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .base import Generator
from .types import Completion, SamplingParams, prompt_seed

VLLM_MISSING = (
    "the 'vllm' generation backend needs vLLM, which is not installed: pip install 'phi4-recipes[vllm]' "
    "(vLLM needs a CUDA GPU; on CPU use the 'transformers' backend)"
)


def import_vllm():
    """The vllm module, or an ImportError that says which extra to install."""
    try:
        import vllm
    except ImportError as err:
        raise ImportError(VLLM_MISSING) from err
    return vllm


def vllm_engine_kwargs(
    model: str,
    *,
    tokenizer_path: str | None = None,
    tensor_parallel_size: int = 1,
    seed: int = 0,
    dtype: str = "auto",
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    **extra,
) -> dict:
    """Keyword arguments for `vllm.LLM(...)` from recipe keys; `extra` passes other engine args through."""
    kwargs = {
        "model": model,
        "tokenizer": tokenizer_path or model,
        "tensor_parallel_size": int(tensor_parallel_size),
        "enable_prefix_caching": True,
        "seed": int(seed),
        "dtype": dtype,
        "gpu_memory_utilization": float(gpu_memory_utilization),
        "logprobs_mode": "raw_logprobs",
    }
    if max_model_len is not None:
        kwargs["max_model_len"] = int(max_model_len)
    return {**kwargs, **extra}


def vllm_sampling_kwargs(params: SamplingParams, seed: int) -> dict:
    """Keyword arguments for `vllm.SamplingParams(...)` for one prompt seeded with `seed`.

    logprobs=0 asks for the sampled token's log-prob only; skip_special_tokens=False keeps the text a
    faithful decoding of the ids.
    """
    return {
        "n": params.n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "stop_token_ids": list(params.stop_token_ids),
        "ignore_eos": params.ignore_eos,
        "seed": seed,
        "logprobs": 0,
        "skip_special_tokens": False,
    }


# Engines of this process by their settings. datatrove's local executor runs tasks one after another in one
# process, and each task's producer opens its generator anew; a second engine would load the checkpoint again
# (minutes at 14B) and claim a second gpu_memory_utilization share of GPUs that the first never gives back
# (vLLM has no supported way to free an engine's memory short of ending the process: vllm-project/vllm#3281).
_ENGINES: dict[str, object] = {}


def shared_engine(vllm, engine_kwargs: dict):
    """The process's `vllm.LLM(**engine_kwargs)`, built on first use; later calls with equal settings reuse it."""
    key = json.dumps(engine_kwargs, sort_keys=True, default=str)
    if key not in _ENGINES:
        _ENGINES[key] = vllm.LLM(**engine_kwargs)
    return _ENGINES[key]


class VLLMGenerator(Generator):
    """Samples with a `vllm.LLM` engine built from `vllm_engine_kwargs(model, **engine_kwargs)`.

    Args:
        model: local folder or Hub id.
        tokenizer: a tokenizer object for `chat` (the engine loads its own from the model folder).
        engine_kwargs: recipe keys for `vllm_engine_kwargs` (tensor_parallel_size, tokenizer_path,
            gpu_memory_utilization, max_model_len, ...).

    `close` (the base class's) leaves the engine to the process, for the next generator with its settings.
    """

    def __init__(self, model: str, tokenizer=None, **engine_kwargs):
        vllm = import_vllm()
        self._vllm = vllm
        self.llm = shared_engine(vllm, vllm_engine_kwargs(model, **engine_kwargs))
        self.tokenizer = tokenizer if tokenizer is not None else self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        requests = [{"prompt_token_ids": [int(t) for t in p]} for p in prompts]
        sampling = [self._vllm.SamplingParams(**vllm_sampling_kwargs(params, prompt_seed(params.seed, i)))
                    for i in range(len(prompts))]
        outputs = self.llm.generate(requests, sampling_params=sampling, use_tqdm=False)
        return [[_to_completion(o) for o in sorted(out.outputs, key=lambda o: o.index)] for out in outputs]

    def token_logprobs(self, prompt_ids: Sequence[int], continuation_ids: Sequence[int]) -> list[float]:
        if len(continuation_ids) == 0:
            return []
        ids = [int(t) for t in [*prompt_ids, *continuation_ids]]
        sampling = self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        [output] = self.llm.generate([{"prompt_token_ids": ids}], sampling_params=sampling, use_tqdm=False)
        # prompt_logprobs[t] maps ids[t] (and maybe top alternatives) to its Logprob; entry 0 is None.
        return [float(output.prompt_logprobs[t][ids[t]].logprob) for t in range(len(prompt_ids), len(ids))]


def _to_completion(output) -> Completion:
    """A vLLM CompletionOutput (token_ids, text, logprobs: list[dict[id, Logprob]], finish_reason)."""
    ids = [int(t) for t in output.token_ids]
    logprobs = [float(step[t].logprob) for t, step in zip(ids, output.logprobs or [])]
    finish = "length" if output.finish_reason == "length" else "stop"
    return Completion(token_ids=ids, text=output.text, logprobs=logprobs, finish_reason=finish)
